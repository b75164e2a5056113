"""A loss that turns NaN stops training with the epoch and batch, keeping the checkpoint."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.errors import VisionkitError
from visionkit.train.callbacks import NonFiniteLossError

STEPS_PER_EPOCH = 6  # 96 training digits in batches of 16


@keras.saving.register_keras_serializable(package="visionkit_tests")
class PoisonAfter(keras.layers.Layer):
    """Passes its input through, but adds NaN from training call `after + 1` on."""

    def __init__(self, after: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.after = after

    def build(self, input_shape) -> None:
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="calls")

    def call(self, inputs, training=False):
        if not training:
            return inputs
        self.calls.assign_add(1.0)
        poison = tf.where(self.calls > self.after, float("nan"), 0.0)
        return inputs + poison

    def get_config(self) -> dict:
        return {**super().get_config(), "after": self.after}


def _model(after: int) -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(4, 3, activation="relu")(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(10)(PoisonAfter(after)(features)))


def test_nan_loss_names_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
    model = _model(after=STEPS_PER_EPOCH + 2)  # the 3rd batch of the 2nd epoch is NaN
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as error:
        vk.train.fit(model, data, epochs=3, run_dir=run_dir, verbose=0, seed=0,
                     tensorboard=False, plots=False)
    message = str(error.value)
    assert "became nan at epoch 2, batch 3" in message
    best = os.path.join(run_dir, "checkpoints", "best.keras")
    assert best in message
    assert isinstance(error.value, VisionkitError)
    # Training stopped there: one finished epoch was logged.
    with open(run_dir / "history.csv") as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 1
    # The checkpoint is the one from epoch 1: it loads and its weights are finite.
    restored = keras.saving.load_model(best)
    assert all(np.all(np.isfinite(w)) for w in restored.get_weights())
    assert float(restored.get_layer(index=4).calls.numpy()) == STEPS_PER_EPOCH
    scores = restored.evaluate(data.val, return_dict=True, verbose=0)
    assert np.isfinite(scores["loss"])


def test_nan_before_any_checkpoint_says_so():
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1 .*pass a run_dir"):
        vk.train.fit(_model(after=0), data, epochs=1, verbose=0, evaluate=False,
                     plots=False)


@keras.saving.register_keras_serializable(package="visionkit_tests")
class PoisonInInference(keras.layers.Layer):
    """Passes its input through in training and adds NaN in inference, as batch norm's
    overflowed moving statistics do while the training loss (batch statistics) is finite."""

    def call(self, inputs, training=False):
        return inputs if training else inputs + float("nan")


def test_a_nan_validation_loss_with_a_finite_training_loss_stops_training():
    # Batch norm over a 1x1 map with a batch of 2 (2 values per channel) is warned about
    # before the first step; the NaN inference output it can cause stops training.
    data = vk.data.digits(image_size=(8, 8), batch_size=2, seed=0).take(4, 2)
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 8)(keras.layers.Rescaling(1 / 255)(inputs))
    features = keras.layers.BatchNormalization(name="bn")(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(10)(PoisonInInference()(features)))
    with pytest.warns(UserWarning, match=r"bn \(1 position\(s\) per image -> 2 value\(s\)\)"
                      r".*batch of at least 3"):
        with pytest.raises(NonFiniteLossError) as error:
            vk.train.fit(model, data, epochs=2, verbose=0, evaluate=False, plots=False)
    message = str(error.value)
    assert "validation loss val_loss became nan at epoch 1" in message
    assert "while the training loss was" in message and "batch normalization" in message
