"""CoordConv, SpatialTransformer, SE, CBAM, non-local, attention gate, stochastic depth
and LRN against naive NumPy versions of their papers' equations; config round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy_reference import (
    bilinear_sample_eq5,
    conv2d_same,
    resize_bilinear_half_pixel,
    sigmoid,
    softmax,
)

from visionkit.models.layers import (
    CBAM,
    AttentionGate,
    CoordConv2D,
    LocalResponseNormalization,
    NonLocalBlock,
    SpatialTransformer,
    SqueezeExcitation,
    StochasticDepth,
)
from visionkit.models.layers.spatial_transformer import affine_grid, bilinear_sample

RNG = np.random.default_rng(7)
# Non-square on purpose: height and width mixed up would fail.
X = RNG.normal(size=(2, 6, 10, 3)).astype("float32")


def randomize(layer: keras.layers.Layer, seed: int = 0) -> None:
    """Random weights everywhere (zero-initialised kernels would hide mistakes)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in layer.get_weights()])


def test_coord_conv_matches_numpy():
    layer = CoordConv2D(4, 3, padding="same", with_r=True)
    layer.build(X.shape)
    randomize(layer)
    kernel, bias = layer.get_weights()
    rows = np.linspace(-1, 1, 6)[:, None] * np.ones((1, 10))
    columns = np.ones((6, 1)) * np.linspace(-1, 1, 10)[None, :]
    radius = np.sqrt(rows ** 2 + columns ** 2)
    coordinates = np.broadcast_to(np.stack([rows, columns, radius], -1), (2, 6, 10, 3))
    expected = conv2d_same(np.concatenate([X, coordinates], -1), kernel, bias)
    np.testing.assert_allclose(layer(X).numpy(), expected, atol=1e-5)
    assert kernel.shape == (3, 3, 6, 4)


def test_coord_conv_sees_position_a_conv_cannot():
    flat = np.zeros((1, 5, 7, 1), "float32")
    out = CoordConv2D(1, 1, kernel_initializer="ones")(flat).numpy()[0, ..., 0]
    # A 1x1 convolution of a constant image is constant; with coordinates it is y + x.
    np.testing.assert_allclose(out, np.linspace(-1, 1, 5)[:, None] + np.linspace(-1, 1, 7),
                               atol=1e-6)


def rotation_theta(degrees: float, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    angle = np.deg2rad(degrees)
    return np.array([[scale * np.cos(angle), -scale * np.sin(angle), shift[0]],
                     [scale * np.sin(angle), scale * np.cos(angle), shift[1]]], np.float32)


def test_affine_grid_and_sampler_match_equations_1_and_5():
    images = RNG.random((2, 7, 9, 2)).astype("float32")
    # A rotation with a zoom-out and a shift sends some points outside the image.
    theta = np.stack([rotation_theta(30, 1.3, (0.2, -0.1)), rotation_theta(-50, 0.7)])
    height, width = 5, 6
    x_source, y_source = (t.numpy() for t in affine_grid(theta, height, width))
    x_pixels = (x_source + 1) * (9 - 1) / 2
    y_pixels = (y_source + 1) * (7 - 1) / 2
    sampled = bilinear_sample(images, x_pixels, y_pixels).numpy()
    for b in range(2):
        for i in range(height):
            for j in range(width):
                x_t, y_t = -1 + 2 * j / (width - 1), -1 + 2 * i / (height - 1)
                x_s, y_s = theta[b] @ np.array([x_t, y_t, 1.0])
                assert abs(x_s - x_source[b, i, j]) < 1e-6
                expected = bilinear_sample_eq5(images[b], (x_s + 1) * 4, (y_s + 1) * 3)
                np.testing.assert_allclose(sampled[b, i, j], expected, atol=1e-5)
    assert (np.abs(x_source) > 1).any()  # the zero-outside path was exercised


def numpy_localization(layer: SpatialTransformer, images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64)
    for conv in layer.localization_convolutions:
        kernel, bias = (w.numpy() for w in conv.weights)
        x = np.maximum(conv2d_same(x, kernel, bias), 0)
        b, h, w, c = x.shape
        x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    x = x.reshape(len(x), -1)
    hidden_kernel, hidden_bias = (w.numpy() for w in layer.localization_hidden.weights)
    theta_kernel, theta_bias = (w.numpy() for w in layer.localization_theta.weights)
    return (np.maximum(x @ hidden_kernel + hidden_bias, 0) @ theta_kernel
            + theta_bias).reshape(-1, 2, 3)


def test_spatial_transformer_layer_matches_numpy():
    images = RNG.random((2, 12, 16, 1)).astype("float32")
    layer = SpatialTransformer(output_size=(6, 8), localization_filters=(4,),
                               localization_units=8)
    layer.build(images.shape)
    randomize(layer, seed=3)
    theta = numpy_localization(layer, images)
    np.testing.assert_allclose(layer.transform(images).numpy(), theta, rtol=1e-4, atol=1e-5)
    out = layer(images).numpy()
    for b in range(2):
        for i in range(6):
            for j in range(8):
                x_s, y_s = theta[b] @ np.array([-1 + 2 * j / 7, -1 + 2 * i / 5, 1.0])
                expected = bilinear_sample_eq5(images[b], (x_s + 1) * 15 / 2,
                                               (y_s + 1) * 11 / 2)
                np.testing.assert_allclose(out[b, i, j], expected, atol=1e-4)


def test_spatial_transformer_starts_as_identity_and_learns():
    images = RNG.random((2, 8, 8, 1)).astype("float32")
    layer = SpatialTransformer()
    np.testing.assert_allclose(layer(images).numpy(), images, atol=1e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(images) * RNG.random(images.shape).astype("float32"))
    gradient = tape.gradient(loss, layer.localization_theta.bias)
    assert np.abs(gradient.numpy()).sum() > 0  # the sampler passes gradients to theta


def test_squeeze_excitation_matches_numpy():
    layer = SqueezeExcitation(ratio=2)
    layer.build(X.shape)
    randomize(layer)
    w1, b1, w2, b2 = layer.get_weights()
    gate = sigmoid(np.maximum(X.mean(axis=(1, 2)) @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(layer(X).numpy(), X * gate[:, None, None, :], atol=1e-5)


def test_cbam_matches_numpy():
    layer = CBAM(ratio=2, kernel_size=3)
    layer.build(X.shape)
    randomize(layer)
    w1, b1, w2, b2, kernel, bias = layer.get_weights()

    def mlp(v):
        return np.maximum(v @ w1 + b1, 0) @ w2 + b2

    gated = X * sigmoid(mlp(X.mean(axis=(1, 2))) + mlp(X.max(axis=(1, 2))))[:, None, None]
    pooled = np.concatenate([gated.mean(-1, keepdims=True), gated.max(-1, keepdims=True)], -1)
    expected = gated * sigmoid(conv2d_same(pooled, kernel, bias))
    np.testing.assert_allclose(layer(X).numpy(), expected, atol=1e-5)


def test_non_local_block_matches_numpy():
    layer = NonLocalBlock(inter_channels=2)
    layer.build(X.shape)
    randomize(layer)
    (tk, tb), (pk, pb), (gk, gb), (wk, wb) = (
        (w[0].numpy(), w[1].numpy()) for w in
        (layer.theta.weights, layer.phi.weights, layer.g.weights,
         layer.output_projection.weights))
    flat = X.reshape(2, 60, 3).astype(np.float64)
    theta, phi, g = flat @ tk[0, 0] + tb, flat @ pk[0, 0] + pb, flat @ gk[0, 0] + gb
    attended = softmax(theta @ phi.transpose(0, 2, 1)) @ g
    expected = (flat + attended @ wk[0, 0] + wb).reshape(X.shape)
    np.testing.assert_allclose(layer(X).numpy(), expected, atol=1e-5)


def test_attention_gate_matches_numpy():
    x = RNG.normal(size=(2, 6, 10, 3)).astype("float32")
    g = RNG.normal(size=(2, 3, 5, 4)).astype("float32")
    layer = AttentionGate(inter_channels=5)
    layer.build((x.shape, g.shape))
    randomize(layer)
    wx, wg, bg, psi, bpsi = layer.get_weights()
    # W_x: a 2x2 stride-2 convolution = a matrix product over 2x2 blocks.
    blocks = x.reshape(2, 3, 2, 5, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 3, 5, 12)
    projected = blocks @ wx.reshape(12, 5)
    alpha = sigmoid(np.maximum(projected + g @ wg[0, 0] + bg, 0) @ psi[0, 0] + bpsi)
    expected = x * resize_bilinear_half_pixel(alpha, 6, 10)
    np.testing.assert_allclose(layer([x, g]).numpy(), expected, atol=1e-5)


def test_stochastic_depth_drops_whole_branches_and_scales_at_inference():
    shortcut = np.zeros((400, 2, 2, 1), "float32")
    residual = np.ones((400, 2, 2, 1), "float32")
    layer = StochasticDepth(0.75, seed=1)
    np.testing.assert_allclose(layer([shortcut, residual], training=False), 0.75 * residual)
    trained = layer([shortcut, residual], training=True).numpy()
    per_image = trained.reshape(400, -1)
    assert set(np.unique(per_image)) <= {0.0, 1.0}
    assert (per_image == per_image[:, :1]).all()  # one draw per image
    assert abs(per_image[:, 0].mean() - 0.75) < 0.07  # 4 binomial standard deviations


def test_local_response_normalization_matches_the_paper_formula():
    x = np.abs(RNG.normal(size=(1, 2, 3, 7))).astype("float32") * 30
    out = LocalResponseNormalization()(x).numpy()
    expected = np.empty_like(x)
    for c in range(7):
        window = x[..., max(0, c - 2):min(7, c + 3)]
        expected[..., c] = x[..., c] / (2 + 1e-4 * (window ** 2).sum(-1)) ** 0.75
    np.testing.assert_allclose(out, expected, rtol=1e-5)


LAYERS = [
    (lambda: CoordConv2D(4, 3, padding="same", with_r=True), X),
    (lambda: SpatialTransformer(output_size=(4, 5), localization_filters=(4,)), X),
    (lambda: SqueezeExcitation(ratio=2), X),
    (lambda: CBAM(ratio=2, kernel_size=3), X),
    (lambda: NonLocalBlock(inter_channels=2), X),
    (lambda: LocalResponseNormalization(size=3), X),
]


@pytest.mark.parametrize("make_layer,inputs", LAYERS)
def test_layers_round_trip_through_keras_files(make_layer, inputs, tmp_path):
    layer = make_layer()
    source = keras.Input(inputs.shape[1:])
    model = keras.Model(source, layer(source))
    for weight in model.weights:
        weight.assign(np.random.default_rng(1).normal(scale=0.3, size=weight.shape))
    path = tmp_path / "layer.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects: registered layers
    assert type(restored.layers[-1]) is type(layer)
    assert restored.layers[-1].get_config() == layer.get_config()
    np.testing.assert_allclose(restored(inputs).numpy(), model(inputs).numpy(), atol=1e-6)


def test_two_input_layers_round_trip(tmp_path):
    skip, gating = keras.Input((6, 10, 3)), keras.Input((3, 5, 4))
    model = keras.Model([skip, gating], StochasticDepth(0.5)(
        [AttentionGate(4)([skip, gating]), skip]))
    model.save(tmp_path / "two.keras")
    restored = keras.saving.load_model(tmp_path / "two.keras")
    inputs = [X, RNG.normal(size=(2, 3, 5, 4)).astype("float32")]
    np.testing.assert_allclose(restored(inputs).numpy(), model(inputs).numpy(), atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda: SqueezeExcitation(ratio=0), "ratio=0"),
    (lambda: CBAM(kernel_size=0), "kernel_size=0"),
    (lambda: NonLocalBlock(inter_channels=0), "inter_channels=0"),
    (lambda: AttentionGate(inter_channels=4, factor=0), "factor=0"),
    (lambda: StochasticDepth(1.5), "survival_probability=1.5"),
    (lambda: SpatialTransformer(output_size=(8,)), r"output_size=\(8,\)"),
    (lambda: SpatialTransformer(localization_filters=()), "localization_filters=()"),
    (lambda: LocalResponseNormalization(size=4), "size=4"),
    (lambda: CoordConv2D(2, 3, data_format="channels_first"), "channels_first"),
])
def test_bad_layer_arguments_name_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
