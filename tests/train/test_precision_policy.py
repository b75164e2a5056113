"""One precision policy for every way a model reaches `fit`: loss scaling under float16.

A model given by name, by a builder function or as an object, trained with
`mixed_precision="mixed_float16"`, compiles with Keras's `LossScaleOptimizer`; so does a
model the user built under a float16 policy. A loss a billion times smaller than usual
still moves the float16 convolution weights (its gradients underflow to zero without
loss scaling: the control case shows that underflow happens here).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.precision import float16_layers, with_loss_scaling

TINY = {"filters": (8,)}
# Scales the loss so that its gradients at the float16 layers are below float16's
# smallest subnormal (about 6e-8).
TINY_LOSS_FACTOR = 1e-9


def _adam():
    # A tiny epsilon, so that any non-zero gradient moves a weight by about the rate.
    return keras.optimizers.Adam(1e-3, epsilon=1e-12)


def _object(data):
    keras.utils.set_random_seed(0)
    return vk.models.build("simple_cnn", data.input_shape, data.num_classes, **TINY)


def _builder(data):
    return lambda: vk.models.build("simple_cnn", data.input_shape, data.num_classes, **TINY)


class TinyLoss(keras.losses.Loss):
    def __init__(self):
        super().__init__(name="tiny_loss")

    def call(self, y_true, y_pred):
        return TINY_LOSS_FACTOR * keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


@pytest.mark.parametrize("form", ["name", "builder", "object"])
def test_every_model_form_gets_loss_scaling_under_float16(form, tiny_digits):
    spec = {"name": lambda: "simple_cnn", "builder": lambda: _builder(tiny_digits),
            "object": lambda: _object(tiny_digits)}[form]()
    kwargs = {"model_kwargs": TINY} if form == "name" else {}
    run = vk.train.fit(spec, tiny_digits, epochs=1, steps_per_epoch=1, validation_steps=1,
                       verbose=0, mixed_precision="mixed_float16", evaluate=False,
                       seed=0, **kwargs)
    assert run.model.get_layer("conv1").compute_dtype == "float16"
    assert run.model.get_layer("predictions").compute_dtype == "float32"
    assert isinstance(run.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(run.history["loss"][0])


def _conv_change(model, data, optimizer):
    before = model.get_layer("conv1").get_weights()[0].copy()
    model.compile(optimizer=optimizer, loss=TinyLoss(), auto_scale_loss=False)
    images, labels = next(iter(data.train))
    model.train_on_batch(images, labels)
    return float(np.max(np.abs(model.get_layer("conv1").get_weights()[0] - before)))


def test_small_gradients_survive_on_a_float16_model_object(tiny_digits):
    model = _object(tiny_digits)
    # Through fit: the optimizer is loss-scaled and the float16 convolution learns.
    before = model.get_layer("conv1").get_weights()[0].copy()
    run = vk.train.fit(model, tiny_digits, epochs=1, steps_per_epoch=1, verbose=0,
                       loss=TinyLoss(), mixed_precision="mixed_float16", evaluate=False,
                       optimizer=_adam())
    assert isinstance(run.model.optimizer, keras.optimizers.LossScaleOptimizer)
    moved = np.abs(run.model.get_layer("conv1").get_weights()[0] - before).max()
    assert moved > 1e-4  # Adam moves each weight by about the learning rate
    # Control: the same float16 model without loss scaling does not learn at all.
    rebuilt = vk.train.precision.rebuild_model(_object(tiny_digits), "mixed_float16")
    assert _conv_change(rebuilt, tiny_digits, _adam()) == 0.0
    # With a loss-scaled optimizer, the same direct step moves it.
    rebuilt = vk.train.precision.rebuild_model(_object(tiny_digits), "mixed_float16")
    scaled = with_loss_scaling(_adam(), rebuilt)
    assert _conv_change(rebuilt, tiny_digits, scaled) > 1e-4


def test_a_model_built_under_a_float16_policy_is_scaled_even_at_float32(tiny_digits):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _object(tiny_digits)
    finally:
        keras.config.set_dtype_policy(previous)
    assert "conv1" in float16_layers(model)
    run = vk.train.fit(model, tiny_digits, epochs=1, steps_per_epoch=1, verbose=0,
                       mixed_precision="float32", evaluate=False)
    assert isinstance(run.model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_float32_and_bfloat16_are_not_loss_scaled(tiny_digits):
    for policy in ("float32", "mixed_bfloat16"):
        model = vk.train.precision.rebuild_model(_object(tiny_digits), policy)
        assert float16_layers(model) == []
        optimizer = _adam()
        assert with_loss_scaling(optimizer, model) is optimizer
