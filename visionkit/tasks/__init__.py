"""Task objects: the per-task choices every other module asks for.

A task owns its loss, metrics, the quantity checkpoints monitor, how served outputs are
post-processed and how a model is evaluated. Code elsewhere asks the task; it does not
branch on task names. Each task lives in its own module and registers itself under its
name (`visionkit.vocabulary.register_task`), so that the packages below the tasks reach it
through `visionkit.vocabulary.get_task` without importing this package.

Example:

>>> from visionkit.tasks import get_task
>>> get_task("classification").name
'classification'
"""

from __future__ import annotations

from visionkit.tasks.classification import Classification
from visionkit.tasks.detection import Detection
from visionkit.tasks.embedding import Embedding
from visionkit.tasks.multilabel import MultiLabelClassification
from visionkit.tasks.segmentation import Segmentation
from visionkit.vocabulary import TASKS, Task, ends_in_probabilities, get_task, predict_dataset

__all__ = ["TASKS", "Classification", "Detection", "Embedding", "MultiLabelClassification",
           "Segmentation", "Task", "ends_in_probabilities", "get_task", "predict_dataset"]
