"""fit traces its train step once: the optimizer's variables exist before the first step."""

from __future__ import annotations

import keras
import pytest

import visionkit as vk


class CountingModel(keras.Model):
    """A small classifier that counts how often Keras traces its train step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.traces = 0
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(10, activation="softmax")

    def call(self, inputs):
        return self.head(self.pool(inputs))

    def train_step(self, data):
        self.traces += 1  # Python runs only while tracing
        return super().train_step(data)


def test_fit_traces_the_train_step_once(tiny_digits, tmp_path):
    model = CountingModel()
    model(keras.ops.zeros((1, 16, 16, 3)))
    vk.train.fit(model, tiny_digits, epochs=2, verbose=0, run_dir=str(tmp_path),
                 tensorboard=False)
    # Keras creates the optimizer's variables inside the first trace unless they exist,
    # and a tf.function whose first trace creates variables is traced again.
    assert model.traces == 1
    assert model.optimizer.built


def test_plain_keras_traces_twice_without_the_built_optimizer(tiny_digits):
    # The behaviour fit works around: if Keras stops re-tracing, this fails and the
    # workaround can go.
    model = CountingModel()
    model(keras.ops.zeros((1, 16, 16, 3)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(tiny_digits.train, epochs=1, verbose=0)
    assert model.traces == 2


def test_a_subclassed_model_is_checked_against_the_data_by_probing_its_call(tiny_digits,
                                                                            tmp_path):
    # A subclassed model has no symbolic input or output; fit probes one image instead.
    model = CountingModel()
    model.head = keras.layers.Dense(3, activation="softmax")
    with pytest.raises(ValueError, match="3 output units but the data has 10 classes"):
        vk.train.fit(model, tiny_digits, epochs=1, verbose=0, run_dir=str(tmp_path),
                     tensorboard=False)
