"""The epoch backup: weights and optimizer variables written off the training thread come
back exactly, after Keras's epoch record, and a backup of another model is refused."""

import json
import os

import keras
import numpy as np
import pytest

from visionkit.train.resume import KERAS_METADATA, WEIGHTS_FILE, ResumableBackup


def _trained_model(seed: int) -> keras.Model:
    """A small model whose weights and Adam slots all hold values drawn from `seed` (as
    after training; no step is traced)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    for variable in [*model.weights, *model.optimizer.variables]:
        variable.assign(rng.integers(1, 100, variable.shape).astype(variable.dtype))
    return model


def _values(variables):
    return [np.array(v) for v in variables]


def test_the_backup_restores_weights_and_optimizer_state_exactly(tmp_path):
    backup_dir = str(tmp_path / "backup")
    model = _trained_model(0)
    backup = ResumableBackup(backup_dir)
    backup.set_model(model)
    backup.on_train_begin()
    backup.on_epoch_end(0)  # epoch 1 done: copied, then written in the background
    saved_weights = _values(model.weights)
    saved_optimizer = _values(model.optimizer.variables)
    for variable in model.weights:  # the next epoch changes them while the writer runs
        variable.assign(np.zeros(variable.shape, variable.dtype))
    backup._wait_for_writer()
    with open(os.path.join(backup_dir, KERAS_METADATA)) as handle:
        assert json.load(handle)["epoch"] == 1
    assert os.path.exists(os.path.join(backup_dir, WEIGHTS_FILE))

    fresh = _trained_model(1)  # other values everywhere
    assert not np.allclose(_values(fresh.weights)[0], saved_weights[0])
    restore = ResumableBackup(backup_dir)
    restore.set_model(fresh)
    restore.on_train_begin()
    for restored, expected in zip(_values(fresh.weights), saved_weights):
        np.testing.assert_array_equal(restored, expected)
    for restored, expected in zip(_values(fresh.optimizer.variables), saved_optimizer):
        np.testing.assert_array_equal(restored, expected)
    restore.on_train_end()  # Keras removes the finished run's backup
    assert not os.path.exists(backup_dir)


def test_a_backup_of_another_model_is_refused_naming_the_folder(tmp_path):
    backup_dir = str(tmp_path / "backup")
    backup = ResumableBackup(backup_dir)
    backup.set_model(_trained_model(0))
    backup.on_train_begin()
    backup.on_epoch_end(0)
    backup._wait_for_writer()
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    other.compile(optimizer="adam", loss="mse")
    restore = ResumableBackup(backup_dir)
    restore.set_model(other)
    with pytest.raises(ValueError, match="belongs to another model"):
        restore.on_train_begin()
