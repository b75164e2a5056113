"""Models with channels-first layers (converted from PyTorch, or built under
`image_data_format="channels_first"`): their maps `[B, C, h, w]` are read as
`[B, h, w, C]`, so a CAM is over the image's rows and columns, not over channels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk

L = keras.layers
HEIGHT, WIDTH = 16, 12
IMAGES = np.random.default_rng(0).integers(0, 256, (2, HEIGHT, WIDTH, 3)).astype(np.float32)


def _model(nested: bool):
    """Rescale -> Permute to NCHW -> conv (NCHW) -> BatchNorm(axis=1) -> ReLU -> pool."""
    keras.utils.set_random_seed(7)
    conv = L.Conv2D(4, 3, padding="same", data_format="channels_first", name="cf_conv")
    norm = L.BatchNormalization(axis=1, name="cf_norm")
    relu = L.ReLU(name="cf_relu")
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = L.Permute((3, 1, 2), name="to_nchw")(L.Rescaling(1 / 255.0)(inputs))
    if nested:
        inner = keras.Input((3, HEIGHT, WIDTH))
        x = keras.Model(inner, relu(norm(conv(inner))), name="torch_body")(x)
    else:
        x = relu(norm(conv(x)))
    logits = L.Dense(3, name="logits")
    pooled = L.GlobalAveragePooling2D(data_format="channels_first")(x)
    return keras.Model(inputs, L.Softmax()(logits(pooled))), {
        "cf_conv": conv, "cf_norm": norm, "cf_relu": relu}, logits


def _reference(model, layer, logits):
    """Grad-CAM of class 1 on the logits, with the NCHW map's axes named by hand."""
    probe = keras.Model(model.inputs, [layer.output, logits.output])
    with tf.GradientTape() as tape:
        features, scores = probe(tf.constant(IMAGES), training=False)
        score = tf.reduce_sum(scores[:, 1])
    weights = tf.reduce_mean(tape.gradient(score, features), axis=[2, 3])  # per channel
    cam = tf.nn.relu(tf.einsum("bchw,bc->bhw", features, weights)).numpy()
    low, high = cam.min((1, 2), keepdims=True), cam.max((1, 2), keepdims=True)
    return (cam - low) / np.maximum(high - low, 1e-12), features.numpy()


@pytest.mark.parametrize("name", ["cf_conv", "cf_norm", "cf_relu"])
def test_grad_cam_and_activations_of_channels_first_layers(name):
    model, layers, logits = _model(nested=False)
    expected, features = _reference(model, layers[name], logits)
    cam = vk.interpret.grad_cam(model, IMAGES, target=1, layer=name)
    assert cam.shape == (2, HEIGHT, WIDTH)
    np.testing.assert_allclose(cam, expected, atol=1e-5)
    maps = vk.interpret.activations(model, IMAGES, layers=[name])[name]
    np.testing.assert_allclose(maps, features.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)


def test_the_permute_into_channels_first_gives_the_image_back():
    model, _, _ = _model(nested=False)
    maps = vk.interpret.activations(model, IMAGES, layers=["to_nchw"])["to_nchw"]
    np.testing.assert_allclose(maps, IMAGES / 255.0, rtol=1e-6)


def test_channels_first_layers_inside_a_nested_model():
    model, layers, logits = _model(nested=True)
    body = model.get_layer("torch_body")
    with tf.GradientTape() as tape:
        features = body(tf.transpose(tf.constant(IMAGES) / 255.0, (0, 3, 1, 2)),
                        training=False)
        tape.watch(features)
        scores = logits(tf.reduce_mean(features, axis=[2, 3]))
        score = tf.reduce_sum(scores[:, 1])
    weights = tf.reduce_mean(tape.gradient(score, features), axis=[2, 3])
    cam = tf.nn.relu(tf.einsum("bchw,bc->bhw", features, weights)).numpy()
    expected = (cam - cam.min((1, 2), keepdims=True)) / np.maximum(
        cam.max((1, 2), keepdims=True) - cam.min((1, 2), keepdims=True), 1e-12)
    # The default layer is the last map: the nested body's ReLU, channels-first.
    np.testing.assert_allclose(vk.interpret.grad_cam(model, IMAGES, target=1), expected,
                               atol=1e-5)
    many = np.concatenate([IMAGES, IMAGES[:, ::-1], IMAGES[:, :, ::-1]])
    pooled = vk.interpret.embed(model, many, layer="cf_relu", method="pca", verbose=0)
    np.testing.assert_allclose(pooled.features, tf.reduce_mean(body(tf.transpose(
        many / 255.0, (0, 3, 1, 2)), training=False), axis=[2, 3]).numpy(), rtol=1e-5,
        atol=1e-6)


def test_the_report_counts_a_channels_first_layers_channels():
    from visionkit.interpret.report import model_layer_channels

    model, _, _ = _model(nested=True)
    assert model_layer_channels(model, "cf_conv") == 4  # not its width, 12
