"""Callbacks of visionkit's own, where Keras's cost more than they give or say too little.

`fit` uses all three by default: `EpochTensorBoard` (per-epoch scalars only),
`StopOnNonFiniteLoss` (a NaN or infinite loss stops training with an error naming the
epoch and batch) and `BestCheckpoint` (Keras's best-only checkpoint, which also keeps
its bookkeeping across a resumed run and records which epoch it holds).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from visionkit.errors import VisionkitError
from visionkit.train.background_save import SnapshotWriter, wait_for_pending_saves
from visionkit.train.detection_metrics import coco_map

__all__ = ["EpochTensorBoard", "StopOnNonFiniteLoss", "NonFiniteLossError", "BestCheckpoint",
           "MeanAveragePrecisionCallback"]


class EpochTensorBoard(keras.callbacks.Callback):
    """Writes each epoch's logs as TensorBoard scalars, and nothing per batch.

    Keras's `TensorBoard` callback does work on every training batch even with
    `update_freq="epoch"` (about 0.5 ms per batch measured on a small CNN, a few percent
    of a fast training step). This writes the same per-epoch scalars in the same layout
    (`train/` and `validation/` under `log_dir`, validation values without the `val_`
    prefix), so TensorBoard shows the familiar curves at no per-batch cost.

    Args:
        log_dir: the folder of the event files.

    Example:

    >>> import tempfile
    >>> callback = EpochTensorBoard(tempfile.mkdtemp())
    >>> callback.on_train_begin()
    >>> callback.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.7})
    >>> callback.on_train_end()
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._writers = {split: tf.summary.create_file_writer(os.path.join(self.log_dir, split))
                         for split in ("train", "validation")}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values: dict[str, dict[str, float]] = {"train": {}, "validation": {}}
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if key.startswith("val_"):
                values["validation"][f"epoch_{key[4:]}"] = number
            else:
                values["train"][f"epoch_{key}"] = number
        for split, scalars in values.items():
            if not scalars:
                continue
            with self._writers[split].as_default():
                for name, number in scalars.items():
                    tf.summary.scalar(name, number, step=epoch)
            self._writers[split].flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class NonFiniteLossError(VisionkitError, FloatingPointError):
    """The training loss became NaN or infinite; training was stopped."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, saying where.

    Keras's `TerminateOnNaN` prints the batch number and ends `fit` as if it had
    finished, and looks only at the training loss. A validation loss that is NaN or
    infinite at the end of an epoch (the model in inference mode, with batch norm's
    moving statistics, while the training loss stayed finite) stops training too.
    This raises `NonFiniteLossError` instead, naming the epoch and the batch
    (both counted from 1, as Keras's progress bar counts epochs) and the last good
    checkpoint, which it leaves untouched (the weights in memory are no longer usable).
    The loss Keras reports per batch is the epoch's running mean, so the batch named is
    the first whose own loss was not finite.

    Args:
        checkpoint: the best checkpoint's path, named in the message. Defaults to None.

    Example:

    >>> callback = StopOnNonFiniteLoss()
    >>> callback.on_epoch_begin(2)
    >>> callback.on_train_batch_end(6, {"loss": 0.25})
    >>> try:
    ...     callback.on_train_batch_end(7, {"loss": float("nan")})
    ... except NonFiniteLossError as error:
    ...     print(str(error).split(" (")[0])
    The training loss became nan at epoch 3, batch 8
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        self._stop()
        raise NonFiniteLossError(
            f"The training loss became {loss} at epoch {self._epoch + 1}, batch {batch + 1} "
            f"(counted from 1); training stopped. {self._kept()} Usual causes: a learning "
            "rate too high, NaN or infinite values in the inputs, or labels outside the "
            "classes; try a lower learning_rate.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Validation runs the model in inference: batch norm uses its moving statistics,
        # which exploding gradients can overflow while every training loss (computed with
        # the batch's own statistics) stays finite.
        logs = logs or {}
        losses = {}
        for key, value in logs.items():
            if not (key.startswith("val_") and key.endswith("loss")):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(number):
                losses[key] = number
        if not losses:
            return
        self._stop()
        key, value = next(iter(losses.items()))
        raise NonFiniteLossError(
            f"The validation loss {key} became {value} at epoch {epoch + 1} (counted from 1) "
            f"while the training loss was {logs.get('loss')}; training stopped. The model's "
            f"inference outputs are not finite. {self._kept()} Usual causes: batch "
            "normalization over too few values per channel (a small batch on small feature "
            "maps: use a larger batch or larger images) or a learning rate too high; try a "
            "lower learning_rate.")

    def _stop(self) -> None:
        if self.model is not None:
            self.model.stop_training = True
        wait_for_pending_saves()  # the last good checkpoint is on disk before the error

    def _kept(self) -> str:
        if self.checkpoint and os.path.exists(self.checkpoint):
            return f"The last good checkpoint is kept: {self.checkpoint}."
        if self.checkpoint:
            return "No checkpoint was saved before this (no earlier epoch finished well)."
        return "No checkpoint was being written (pass a run_dir to keep one)."


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether a finite monitored `value` beats `best` (None: nothing yet) in `mode` "min"/"max".

    >>> improves(0.5, 0.6, "min"), improves(0.5, 0.6, "max"), improves(float("nan"), None, "min")
    (True, False, False)
    """
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's best-only `ModelCheckpoint` that survives a resumed run.

    Keras's checkpoint forgets the best value when a run restarts, so after resuming
    (`BackupAndRestore`) its first epoch would overwrite a better checkpoint. This one
    writes `<checkpoint>.json` (`epoch` counted from 1, `monitor`, `value`) next to the
    checkpoint each time it saves, and when `resume_dir` (the backup folder) exists when
    the callback is made (`fit` makes it just before training), it reads the record back
    as Keras's `initial_value_threshold`, so that only a better epoch replaces the
    checkpoint.

    The checkpoint is written only when the monitored value improves, and off the
    training thread (`visionkit.train.background_save`): the weights and optimizer
    variables are copied when the epoch ends and written while the next epoch trains;
    the record follows the file, and training's end waits for both.

    Args:
        filepath: the `.keras` checkpoint.
        monitor: the logged quantity that decides (e.g. "val_loss").
        mode: "min" or "max".
        resume_dir: the `BackupAndRestore` folder; None when runs do not resume.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "best.keras")
    >>> callback = BestCheckpoint(path, monitor="val_loss", mode="min")
    >>> callback.record_path.endswith("best.json")
    True
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str, mode: str,
                 resume_dir: str | os.PathLike | None = None) -> None:
        self.resume_dir = None if resume_dir is None else os.fspath(resume_dir)
        self.record_path = os.path.splitext(os.fspath(filepath))[0] + ".json"
        # A resumed run starts from the recorded best: Keras's own threshold.
        super().__init__(os.fspath(filepath), monitor=monitor, mode=mode,
                         save_best_only=True, initial_value_threshold=self._resumed_best(
                             monitor))
        self._writer = SnapshotWriter()

    def _resumed_best(self, monitor: str) -> float | None:
        if self.resume_dir is None or not os.path.isdir(self.resume_dir):
            return None
        record = read_best_record(self.record_path)
        if record is None or record.get("monitor") != monitor:
            return None
        return float(record["value"])

    def set_model(self, model: keras.Model) -> None:
        from visionkit.train.wrapper import trained_model

        super().set_model(trained_model(model))  # a wrapper's checkpoint is its inner model

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:  # Keras saves every epoch then, and says so
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=2)
            self._save(epoch, None)
            return
        current = float(current)
        if improves(current, self.best, self.mode):
            self.best = current
            self._save(epoch, current)

    def _save(self, epoch: int, value: float | None) -> None:
        from visionkit.train.run_dir import write_json_atomic

        def record() -> None:
            if value is not None:
                write_json_atomic(self.record_path, {"epoch": epoch + 1,
                                                     "monitor": self.monitor, "value": value})

        self._writer.save(self.model, self.filepath, then=record)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._writer.wait()  # the checkpoint and its record are on disk
        super().on_train_end(logs)


def read_best_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The `{"epoch", "monitor", "value"}` record `BestCheckpoint` wrote, or None."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class MeanAveragePrecisionCallback(keras.callbacks.Callback):
    """Adds `val_map` and `val_map50` (pycocotools) to the logs every `every` epochs.

    Args:
        dataset: the batched validation dataset.
        class_names: names of the classes.
        predict: `predict(model, dataset) -> (truths, guesses, images)`, the detection
            task's `predict`: per image, dicts of true and detected boxes (xyxy pixels),
            classes and (for guesses) scores.
        every: epochs between evaluations (the last epoch of a run may be skipped; the
            final evaluation of `fit` covers it). Defaults to 5.

    Attributes:
        latest: the last computed `{"val_map": ..., "val_map50": ...}`.
    """

    def __init__(self, dataset: tf.data.Dataset, class_names: list[str],
                 predict: Callable[[keras.Model, tf.data.Dataset], tuple], every: int = 5
                 ) -> None:
        super().__init__()
        self.dataset = dataset
        self.predict = predict
        self.class_names = class_names
        self.every = int(every)

        self.latest = {"val_map": float("nan"), "val_map50": float("nan")}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            truths, guesses, _ = self.predict(self.model, self.dataset)
            result = coco_map(truths, guesses)
            self.latest = {"val_map": result["map"], "val_map50": result["map50"]}
            print(f"\nEpoch {epoch + 1}: val_map={result['map']:.4f} "
                  f"val_map50={result['map50']:.4f}")
        if logs is not None:
            # Logged every epoch (the latest value, NaN before the first evaluation), so
            # that CSV logs, which fix their columns on the first epoch, keep the column.
            logs.update(self.latest)
