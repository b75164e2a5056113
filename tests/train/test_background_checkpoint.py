"""The best checkpoint is written only when it improves, off the training thread, and
holds exactly the state of the epoch it names."""

import json
import os

import keras
import numpy as np
import pytest

from visionkit.train.background_save import SnapshotWriter
from visionkit.train.callbacks import BestCheckpoint


def _compiled_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2)], name="tiny")
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.fixture(scope="module")
def model():
    return _compiled_model()


def _state(model):
    return [np.array(w) for w in model.get_weights()], \
        [np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def _shift(model, amount):
    """Changes every weight and optimizer variable, as a training epoch does."""
    model.set_weights([w + amount for w in model.get_weights()])
    for variable in model.optimizer.variables:
        variable.assign(keras.ops.convert_to_numpy(variable) + amount)


def _assert_holds(path, expected):
    loaded = keras.saving.load_model(path)
    weights, optimizer = expected
    for got, want in zip(loaded.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    assert len(loaded.optimizer.variables) == len(optimizer)
    for got, want in zip(loaded.optimizer.variables, optimizer):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), want)


def test_checkpoint_is_rewritten_only_when_the_best_value_improves(model, tmp_path):
    path = tmp_path / "checkpoints" / "best.keras"
    callback = BestCheckpoint(path, monitor="val_loss", mode="min")
    callback.set_model(model)
    callback.on_train_begin()
    saved = {}
    written = []
    for epoch, value in enumerate([0.5, 0.7, 0.5, 0.4]):
        _shift(model, 0.25)
        state = _state(model)
        callback.on_epoch_end(epoch, {"val_loss": value})
        _shift(model, 1.0)  # the next epoch trains while the file is written
        callback._writer.wait()
        record = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
        written.append((record["epoch"], os.stat(path).st_mtime_ns))
        saved[record["epoch"]] = saved.get(record["epoch"], state)
    callback.on_train_end()
    assert callback._writer.in_background
    # Epochs 2 (worse) and 3 (equal) left the file and its record as epoch 1 wrote them.
    assert [epoch for epoch, _ in written] == [1, 1, 1, 4]
    assert written[1][1] == written[0][1] == written[2][1] != written[3][1]
    assert callback.best == 0.4
    # The file holds the state of the epoch it names, not the weights changed after it.
    _assert_holds(path, saved[4])
    assert not [name for name in os.listdir(path.parent) if name.startswith(".tmp-")]


def test_background_file_equals_keras_own_save(model, tmp_path):
    writer = SnapshotWriter()
    writer.save(model, tmp_path / "background.keras")
    writer.wait()
    assert writer.in_background
    model.save(tmp_path / "keras.keras")
    ours = keras.saving.load_model(tmp_path / "background.keras")
    theirs = keras.saving.load_model(tmp_path / "keras.keras")
    assert ours.get_config() == theirs.get_config()
    assert ours.get_compile_config() == theirs.get_compile_config()
    _assert_holds(tmp_path / "background.keras", _state(theirs))


class _Unconfigurable(keras.Model):
    """A subclassed model without get_config: Keras cannot rebuild it."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


def test_model_keras_cannot_rebuild_is_saved_on_the_training_thread(tmp_path):
    model = _Unconfigurable()
    model(np.ones((1, 3), "float32"))
    writer = SnapshotWriter()
    writer.save(model, tmp_path / "model.keras")
    assert not writer.in_background
    assert (tmp_path / "model.keras").is_file()


def test_an_error_while_writing_is_raised_on_the_training_thread(model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = SnapshotWriter()
    writer.save(model, blocker / "best.keras")  # a folder that cannot be made
    with pytest.raises(RuntimeError, match="Saving the checkpoint failed"):
        writer.wait()
