"""Training state that survives an interrupted run, so a resumed run continues exactly.

Keras's `BackupAndRestore` keeps the model's weights, the optimizer's variables (its
slots, the step counter a cosine schedule reads, and the current learning rate) and the
epoch. It leaves out what lives in callbacks and layers:

- `ReduceLROnPlateau`'s counters (`wait`, `best`, `cooldown_counter`) and
  `EarlyStopping`'s (`wait`, `best`, `best_epoch`, its best weights): a resumed run
  would start counting patience again.
- The state of the layers' random streams (`Dropout`, Keras random augmentation
  layers): a resumed run would draw the first epoch's dropout masks again.
- And, because Keras's callback saves at the *start* of the epoch-end hooks when it
  comes first, a learning rate that `ReduceLROnPlateau` cuts at the end of an epoch is
  saved uncut: the resumed run starts from the old rate.

`ResumableBackup` is Keras's callback with those three fixed: `fit` places it after its
own callbacks, so it saves what they left at the end of the epoch; it
saves the callbacks' counters and the random streams next to the weights (keeping the
last two epochs, so the state always matches the weights Keras restores); and it puts
them back after the other callbacks have reset themselves. A callback of the user's
carries its state too when it has `get_resume_state()` (returning JSON-friendly values)
and `set_resume_state(state)`.

The data order is the other half: `visionkit.data.Data.train_from_epoch(epoch)` seeds the
shuffle and the augmentation streams of epoch `e` from `(seed, e)`, so the resumed run
reads epoch 4 in the order an uninterrupted run reads it (`first_epoch` tells `fit`
where a run resumes).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import keras
import numpy as np

__all__ = ["ResumableBackup", "LearningRateLog", "first_epoch", "callback_state",
           "set_callback_state"]

logger = logging.getLogger(__name__)

# Files written into the backup folder next to Keras's own.
STATE_FILE = "visionkit_state.json"
ARRAYS_FILE = "visionkit_state_{epoch}.npz"
# Keras's record of the last finished epoch in the backup folder.
KERAS_METADATA = "training_metadata.json"

# The attributes of Keras's stateful callbacks that decide what they do next.
_KERAS_CALLBACK_STATE: tuple[tuple[type, tuple[str, ...]], ...] = (
    (keras.callbacks.ReduceLROnPlateau, ("wait", "best", "cooldown_counter")),
    (keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch", "stopped_epoch")),
    (keras.callbacks.ModelCheckpoint, ("best",)),
)


def first_epoch(backup_dir: str | os.PathLike | None) -> int:
    """The epoch (counted from 0) a run with this backup folder resumes at (0: a new run)."""
    if backup_dir is None:
        return 0
    for name in (KERAS_METADATA, KERAS_METADATA + ".bkp"):
        try:
            with open(os.path.join(backup_dir, name)) as handle:
                return int(json.load(handle)["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(value).item()
    return value


def callback_state(callback: keras.callbacks.Callback) -> dict[str, Any] | None:
    """The counters a callback needs to continue exactly, or None for a stateless one."""
    if hasattr(callback, "get_resume_state"):
        return dict(callback.get_resume_state())
    for kind, names in _KERAS_CALLBACK_STATE:
        if isinstance(callback, kind):
            return {name: _plain(getattr(callback, name, None)) for name in names}
    return None


def set_callback_state(callback: keras.callbacks.Callback, state: dict[str, Any]) -> None:
    """Puts back what `callback_state` returned."""
    if hasattr(callback, "set_resume_state"):
        callback.set_resume_state(state)
        return
    for name, value in state.items():
        setattr(callback, name, value)


def _seed_generators(model: keras.Model) -> list[Any]:
    generators = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        generators += list(getattr(layer, "_seed_generators", []) or [])
    return generators


class LearningRateLog(keras.callbacks.Callback):
    """Adds `learning_rate` (the rate the next step uses) to each epoch's logs.

    Placed before the CSV logger, it puts the learning rate of every epoch into
    `history.csv` whatever the schedule (a cosine decay, a plateau cut or a constant).
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        optimizer = self.model.optimizer
        rate = getattr(optimizer, "inner_optimizer", optimizer).learning_rate
        logs["learning_rate"] = float(np.asarray(rate))


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore` that also carries the callbacks' and random streams' state.

    Args:
        backup_dir: the backup folder (removed when the run finishes).
        callbacks: the run's other callbacks, whose state is saved (see the module's
            docstring). `fit` passes them; set them later with `track(callbacks)`.

    Example:

    >>> import tempfile
    >>> plateau = keras.callbacks.ReduceLROnPlateau(patience=2)
    >>> backup = ResumableBackup(tempfile.mkdtemp(), callbacks=[plateau])
    >>> callback_state(plateau)
    {'wait': 0, 'best': None, 'cooldown_counter': 0}
    """

    def __init__(self, backup_dir: str | os.PathLike,
                 callbacks: list[keras.callbacks.Callback] = ()) -> None:
        super().__init__(os.fspath(backup_dir))
        self._tracked: list[keras.callbacks.Callback] = []
        self.track(callbacks)

    def track(self, callbacks: list[keras.callbacks.Callback]) -> None:
        """Sets the callbacks whose state is saved and restored."""
        self._tracked = [c for c in callbacks if c is not self]

    def _keys(self) -> list[tuple[str, keras.callbacks.Callback]]:
        seen: dict[str, int] = {}
        keyed = []
        for callback in self._tracked:
            name = type(callback).__name__
            seen[name] = seen.get(name, 0) + 1
            keyed.append((f"{name}:{seen[name]}", callback))
        return keyed

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        epoch = first_epoch(self.backup_dir)
        if epoch:
            self._restore_state(epoch)

    def _restore_state(self, epoch: int) -> None:
        try:
            with open(os.path.join(self.backup_dir, STATE_FILE)) as handle:
                saved = json.load(handle)
        except (OSError, ValueError):
            saved = {}
        state = saved.get(str(epoch))
        if state is None:
            logger.warning(
                "Resuming at epoch %d from %s without the callbacks' and random streams' "
                "state (it was not saved for that epoch): learning-rate plateau and early "
                "stopping counters start again.", epoch + 1, self.backup_dir)
            return
        for key, callback in self._keys():
            if key in state["callbacks"]:
                set_callback_state(callback, state["callbacks"][key])
        arrays_path = os.path.join(self.backup_dir, ARRAYS_FILE.format(epoch=epoch))
        if not os.path.exists(arrays_path):
            return
        with np.load(arrays_path) as arrays:
            generators = _seed_generators(self.model)
            for index, generator in enumerate(generators):
                name = f"seed_{index}"
                if name in arrays and tuple(arrays[name].shape) == tuple(generator.state.shape):
                    generator.state.assign(arrays[name])
            for key, callback in self._keys():
                names = sorted((n for n in arrays.files if n.startswith(f"{key}/best_weights/")),
                               key=lambda n: int(n.rsplit("/", 1)[1]))
                if names and isinstance(callback, keras.callbacks.EarlyStopping):
                    callback.best_weights = [arrays[n] for n in names]

    def _save_model(self) -> None:
        # The callbacks' state for this epoch is written first, keyed by epoch, so that
        # whichever weights Keras's own (double) checkpoint restores, their state is there.
        epoch = self._current_epoch
        os.makedirs(self.backup_dir, exist_ok=True)
        state_path = os.path.join(self.backup_dir, STATE_FILE)
        try:
            with open(state_path) as handle:
                saved = json.load(handle)
        except (OSError, ValueError):
            saved = {}
        callbacks = {}
        arrays: dict[str, np.ndarray] = {}
        for key, callback in self._keys():
            state = callback_state(callback)
            if state is not None:
                callbacks[key] = state
            best_weights = getattr(callback, "best_weights", None)
            if isinstance(callback, keras.callbacks.EarlyStopping) and best_weights:
                for index, weight in enumerate(best_weights):
                    arrays[f"{key}/best_weights/{index}"] = np.asarray(weight)
        for index, generator in enumerate(_seed_generators(self.model)):
            arrays[f"seed_{index}"] = np.asarray(generator.state)
        np.savez(os.path.join(self.backup_dir, ARRAYS_FILE.format(epoch=epoch)), **arrays)
        kept = {k: v for k, v in saved.items() if k.isdigit() and int(k) >= epoch - 1}
        kept[str(epoch)] = {"callbacks": callbacks}
        from visionkit.train.run_dir import write_json_atomic

        write_json_atomic(state_path, kept)
        stale = os.path.join(self.backup_dir, ARRAYS_FILE.format(epoch=epoch - 2))
        if os.path.exists(stale):
            os.remove(stale)
        super()._save_model()


def order_for_resume(callbacks: list[keras.callbacks.Callback]) -> list[keras.callbacks.Callback]:
    """Tells each `ResumableBackup` which callbacks to carry; returns the list unchanged.

    `fit` places the backup after its own callbacks and before the user's: its
    epoch-end save sees what visionkit's callbacks changed at that epoch's end (a
    learning-rate cut, a new best value), and a user's callback that stops the run at
    an epoch's end does not lose that epoch. Its train-begin restore runs after the
    callbacks before it have reset themselves; the user's callbacks with
    `get_resume_state` are carried too.
    """
    for backup in (c for c in callbacks if isinstance(c, ResumableBackup)):
        backup.track(callbacks)
    return list(callbacks)
