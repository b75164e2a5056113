"""Run directories: where a training run keeps its logs, checkpoints, metrics and plots.

Layout::

    <run_dir>/
      recipe.yaml          the resolved recipe, when the run came from one
      config.json          the arguments of `fit` and the data set's description
      history.csv          one row per epoch (Keras CSVLogger)
      metrics.json         final evaluation on the validation split
      curves.png           loss and metric curves
      confusion_matrix.png (classification) and the task's other figures
      checkpoints/best.keras
      backup/              BackupAndRestore state while a run is in progress
      tensorboard/         TensorBoard logs
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from typing import Any

import numpy as np

__all__ = ["RunDirectory", "write_json_atomic"]


# What a history.csv cell holds for a metric its epoch did not log (Keras writes "NA").
_MISSING = (None, "", "NA")


class RunDirectory:
    """Paths inside one run directory.

    Args:
        root: the run directory; created on first write.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.fspath(root)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def best_checkpoint(self) -> str:
        return self.path("checkpoints", "best.keras")

    @property
    def history_csv(self) -> str:
        return self.path("history.csv")

    @property
    def backup(self) -> str:
        return self.path("backup")

    @property
    def tensorboard(self) -> str:
        return self.path("tensorboard")

    def create(self) -> RunDirectory:
        os.makedirs(self.path("checkpoints"), exist_ok=True)
        return self

    def write_json(self, name: str, payload: Any) -> str:
        path = self.path(name)
        write_json_atomic(path, payload)
        return path

    def start_history(self) -> str | None:
        """Moves the history.csv of an earlier, finished run aside before a new run.

        A run that does not resume (no backup to continue from) writes its own history:
        Keras's CSVLogger appends rows under the header already in the file, so a run with
        other metrics would put its values under the earlier run's column names. The old
        file is kept as `history.previous-<n>.csv`, said once.

        Returns:
            The path the earlier history was moved to, or None when there was none.
        """
        if not os.path.exists(self.history_csv):
            return None
        index = 1
        while os.path.exists(self.path(f"history.previous-{index}.csv")):
            index += 1
        kept = self.path(f"history.previous-{index}.csv")
        os.replace(self.history_csv, kept)
        warnings.warn(f"{self.root!r} holds the history of an earlier run that this run does "
                      f"not resume (no backup to continue from); it was moved to {kept!r} "
                      "and this run's history starts afresh in history.csv.", stacklevel=3)
        return kept

    def read_history(self) -> dict[str, list[float]]:
        """The per-epoch history from history.csv (empty if none was written).

        Keras's CSVLogger writes "NA" for a metric an epoch did not log (every `val_`
        column of a run without validation data); those cells are left out, and so is a
        column with no value.
        """
        import csv

        if not os.path.exists(self.history_csv):
            return {}
        with open(self.history_csv, newline="") as handle:
            rows = list(csv.DictReader(handle))
        keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
        history = {k: [float(row[k]) for row in rows if row.get(k) not in _MISSING]
                   for k in keys}
        return {k: values for k, values in history.items() if values}

    def __repr__(self) -> str:
        return f"RunDirectory({self.root!r})"


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_json_atomic(path: str, payload: Any) -> None:
    """Writes JSON to a temporary file beside `path`, then renames it into place."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(_to_jsonable(payload), handle, indent=2, default=str)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
