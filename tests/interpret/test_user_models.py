"""Models as users bring them (cases from the tf-keras-vis, tf-explain and keras
trackers): preprocessing layers inside, reloaded from `.keras`, mixed_float16, a softmax
as its own layer, BatchNorm + Dropout before the head, an input of any size, grayscale,
two inputs, sub-models whose layers share a name. Grad-CAM is checked against a
GradientTape written here; inputs as uint8, float64, tensors, one image and lists agree.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.interpret.checks import ArgumentError

L = keras.layers


def _head(x):
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = L.GlobalAveragePooling2D()(x)
    logits = L.Dense(3, name="logits")(x)
    return L.Activation("softmax", dtype="float32", name="probs")(logits)


def _preprocessing(channels=3, shape=(16, 16)):
    inputs = keras.Input((*shape, channels))
    x = L.Normalization(mean=0.5, variance=0.1)(L.Rescaling(1 / 255.0)(inputs))
    return keras.Model(inputs, _head(x))


def _regularized():
    inputs = keras.Input((16, 16, 3))
    x = L.Rescaling(1 / 255.0)(inputs)
    x = L.BatchNormalization()(L.Conv2D(4, 3, padding="same", name="c1")(x))
    x = L.Dropout(0.5)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(3, name="logits")(x)))


def _mixed():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _preprocessing()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _any_size():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, _head(L.Rescaling(1 / 255.0)(inputs)))


def _reloaded(tmp_path):
    path = tmp_path / "user.keras"
    _preprocessing().save(path)
    return keras.models.load_model(path)


def _reference_cam(model, images):
    """Grad-CAM of class 1 on the logits, through the model's own layers."""
    probe = keras.Model(model.inputs, [model.get_layer("c1").output,
                                       model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        features, logits = probe(tf.constant(images, tf.float32), training=False)
        score = tf.reduce_sum(tf.cast(logits, tf.float32)[:, 1])
    weights = tf.reduce_mean(tf.cast(tape.gradient(score, features), tf.float32), [1, 2])
    features = tf.cast(features, tf.float32)
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", features, weights))
    cam = tf.image.resize(cam[..., None], images.shape[1:3], "bilinear")[..., 0].numpy()
    low, high = cam.min((1, 2), keepdims=True), cam.max((1, 2), keepdims=True)
    return (cam - low) / np.maximum(high - low, 1e-12)


@pytest.mark.parametrize("build", ["preprocessing", "regularized", "mixed", "any_size",
                                   "reloaded", "grayscale"])
def test_grad_cam_on_user_models_matches_a_tape(build, tmp_path):
    keras.utils.set_random_seed(3)
    model = {"preprocessing": _preprocessing, "regularized": _regularized, "mixed": _mixed,
             "any_size": _any_size, "reloaded": lambda: _reloaded(tmp_path),
             "grayscale": lambda: _preprocessing(channels=1)}[build]()
    channels = model.inputs[0].shape[-1]
    shape = (24, 40) if build == "any_size" else (16, 16)
    images = np.random.default_rng(0).integers(0, 256, (2, *shape, channels)).astype("uint8")
    maps = vk.interpret.grad_cam(model, images, target=1, layer="c1")
    assert maps.shape == (2, *shape) and np.isfinite(maps).all()
    tolerance = 2e-2 if build == "mixed" else 1e-5
    np.testing.assert_allclose(maps, _reference_cam(model, images), atol=tolerance)


def test_every_image_form_gives_the_same_maps():
    keras.utils.set_random_seed(3)
    model = _preprocessing()
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype("uint8")
    expected = vk.interpret.grad_cam(model, images, target=1)
    for form in (images.astype("float64"), tf.constant(images), list(images)):
        np.testing.assert_allclose(vk.interpret.grad_cam(model, form, target=1), expected,
                                   atol=1e-6)
    np.testing.assert_allclose(vk.interpret.grad_cam(model, images[1], target=1),
                               expected[1:], atol=1e-6)


def test_two_inputs_are_refused_naming_the_model():
    images, extra = keras.Input((16, 16, 3)), keras.Input((4,))
    x = L.Concatenate()([L.GlobalAveragePooling2D()(L.Conv2D(4, 3)(images)), extra])
    model = keras.Model([images, extra], L.Dense(3, activation="softmax")(x))
    with pytest.raises(ArgumentError, match="2 inputs") as error:
        vk.interpret.saliency(model, np.zeros((1, 16, 16, 3)), target=0)
    assert error.value.argument == "model"


def test_layers_sharing_a_name_across_sub_models_are_refused_not_mixed_up():
    """Two sub-models each with a layer named "conv": reading "conv" must not silently
    pick one (nor call it one layer used twice); a distinct name works."""

    def block(name):
        inputs = keras.Input((16, 16, 3))
        return keras.Model(inputs, L.Conv2D(3, 3, padding="same", name="conv")(inputs),
                           name=name)

    inputs = keras.Input((16, 16, 3))
    x = block("first")(inputs)
    x = L.Conv2D(3, 3, padding="same", name="own")(block("second")(x))
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(
        L.GlobalAveragePooling2D()(x)))
    images = np.random.default_rng(0).uniform(0, 1, (1, 16, 16, 3))
    for call in (lambda: vk.interpret.grad_cam(model, images, target=0, layer="conv"),
                 lambda: vk.interpret.activations(model, images, layers="conv"),
                 lambda: vk.interpret.weights(model, "conv")):
        with pytest.raises(ArgumentError, match=r"2 different layers named 'conv'.*"
                                                r"\['first', 'second'\]") as error:
            call()
        assert error.value.argument in ("layer", "layers")
    assert vk.interpret.grad_cam(model, images, target=0, layer="own").shape == (1, 16, 16)


def _opaque_head(activation, units):
    """The head's activation written inside a Lambda, which the graph does not name."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, name="c1")(L.Rescaling(1 / 255.0)(inputs)))
    return keras.Model(inputs, L.Lambda(activation, name="opaque")(L.Dense(units)(x)))


def test_a_softmax_inside_a_lambda_is_read_as_probabilities_and_said_once():
    from visionkit.interpret.adapter import adapt

    model = _opaque_head(lambda t: tf.nn.softmax(t), 3)
    with pytest.warns(UserWarning, match=r"layer 'opaque' \(Lambda\).*gives "
                                         r"probabilities summing to 1") as said:
        head = adapt(model).head
        adapt(model)
    assert len([w for w in said if "opaque" in str(w.message)]) == 1
    # Read as logits, the probabilities would be softmaxed a second time.
    assert head.kind == "softmax" and not head.from_logits and head.pre_activation is None


def test_a_sigmoid_inside_a_lambda_is_said_and_linear_lambdas_are_logits():
    from visionkit.interpret.adapter import adapt

    with pytest.warns(UserWarning, match=r"'opaque' \(Lambda\).*values all lie in 0\.\.1"):
        assert adapt(_opaque_head(lambda t: tf.sigmoid(t), 1)).head.kind == "logits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adapt(_opaque_head(lambda t: 40.0 * t - 3.0, 3)).head.kind == "logits"
