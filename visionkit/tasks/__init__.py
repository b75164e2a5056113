"""Task objects: the per-task choices every other module asks for.

A task owns its loss, metrics, the quantity checkpoints monitor, how served outputs are
post-processed and how a model is evaluated. Code elsewhere asks the task; it does not
branch on task names. Each task lives in its own module and is listed in `TASKS`.

Example:

>>> from visionkit.tasks import get_task
>>> get_task("classification").name
'classification'
"""

from __future__ import annotations

import difflib

from visionkit.tasks.base import Task, ends_in_probabilities, predict_dataset
from visionkit.tasks.classification import Classification
from visionkit.tasks.detection import Detection
from visionkit.tasks.embedding import Embedding
from visionkit.tasks.multilabel import MultiLabelClassification
from visionkit.tasks.segmentation import Segmentation

__all__ = ["TASKS", "Classification", "Detection", "Embedding", "MultiLabelClassification", "Segmentation",
           "Task",
           "ends_in_probabilities", "get_task", "predict_dataset"]

TASKS: dict[str, type[Task]] = {"classification": Classification, "detection": Detection,
                               "segmentation": Segmentation,
                               "multilabel": MultiLabelClassification,
                               "embedding": Embedding}


def get_task(task: str | Task) -> Task:
    """Returns the task object for a name (or the object itself).

    Raises:
        ValueError: for an unknown task name, listing the known ones.
    """
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        close = difflib.get_close_matches(str(task), TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown task {task!r}.{hint} Known tasks: {sorted(TASKS)}.")
    return TASKS[task]()
