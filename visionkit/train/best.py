"""What a run hands on is its best model: the best epoch's weights, restored at the end.

`fit` watches the task's monitored quantity (e.g. `val_accuracy`, `val_mean_iou`). When
training ends, the model takes the weights of the best epoch: from the best checkpoint
(`checkpoints/best.keras`, whose record `best.json` says which epoch it holds, also
across a resumed run) when the run writes one, or from a copy kept in memory otherwise.
The final evaluation, the recipe's export and the report then use those weights, and
`metrics.json` says which epoch they come from.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import keras
import numpy as np

from visionkit.train.callbacks import improves, read_best_record

__all__ = ["BestWeights"]

logger = logging.getLogger(__name__)


class BestWeights(keras.callbacks.Callback):
    """Keeps track of the best epoch and puts its weights back with `restore(model)`.

    Args:
        monitor: the logged quantity that decides (e.g. "val_loss").
        mode: "min" or "max".
        checkpoint: the best checkpoint (`.keras`) a `BestCheckpoint` writes, or None
            to keep the best weights in memory (one copy of the weights).

    Example:

    >>> callback = BestWeights("val_loss", "min")
    >>> callback.best_epoch is None
    True
    """

    def __init__(self, monitor: str, mode: str,
                 checkpoint: str | os.PathLike | None = None) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"Expected mode 'min' or 'max'; received mode={mode!r}.")
        self.monitor = monitor
        self.mode = mode
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self._weights: list[np.ndarray] | None = None

    def set_model(self, model: keras.Model) -> None:
        from visionkit.train.wrapper import trained_model

        super().set_model(trained_model(model))  # a wrapper keeps its inner model's weights

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if improves(value, self.best_value, self.mode):
            self.best_epoch, self.best_value = epoch + 1, value
            if self.checkpoint is None:
                self._weights = [np.array(w) for w in self.model.get_weights()]

    def restore(self, model: keras.Model) -> dict[str, Any] | None:
        """Loads the best epoch's weights into `model`.

        Returns:
            `{"epoch" (counted from 1), "monitor", "value", "source"}`, or None when no
            epoch was recorded (e.g. the monitored quantity was never logged).
        """
        if self.checkpoint is not None:
            record = read_best_record(os.path.splitext(self.checkpoint)[0] + ".json")
            if record is None or not os.path.exists(self.checkpoint):
                logger.warning("The best checkpoint %s was not written; the last epoch's "
                               "weights are kept.", self.checkpoint)
                return None
            model.load_weights(self.checkpoint)
            return {**record, "source": self.checkpoint}
        if self._weights is None:
            logger.warning("No epoch logged %r; the last epoch's weights are kept.",
                           self.monitor)
            return None
        model.set_weights(self._weights)
        return {"epoch": self.best_epoch, "monitor": self.monitor, "value": self.best_value,
                "source": "memory"}
