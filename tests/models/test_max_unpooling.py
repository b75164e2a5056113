"""MaxUnpooling2D against tf.nn.max_pool_with_argmax, with XLA, ties and serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.models.layers import MaxUnpooling2D
from visionkit.models.layers.max_unpooling import max_pool_switches


def argmax_reference(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Scatters `values` to the flat positions `tf.nn.max_pool_with_argmax` reports."""
    _, argmax = tf.nn.max_pool_with_argmax(features, 2, 2, "VALID", include_batch_in_index=True)
    output = np.zeros(features.size, np.float32)
    output[np.asarray(argmax).ravel()] = np.asarray(values).ravel()
    return output.reshape(features.shape)


@pytest.mark.parametrize("shape", [(2, 8, 12, 3), (1, 6, 4, 5)])
def test_values_go_where_max_pool_with_argmax_says(shape):
    # Continuous random input: no ties, so the maximum of each window is unique.
    features = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    values = np.random.default_rng(1).normal(size=(shape[0], shape[1] // 2, shape[2] // 2,
                                                   shape[3])).astype(np.float32)
    unpooled = np.asarray(MaxUnpooling2D(tie_tolerance=0)([values, features]))
    np.testing.assert_array_equal(unpooled, argmax_reference(features, values))


def test_pooled_values_return_to_their_maxima_under_xla():
    # Positive values, so that the zeros unpooling writes never win a later max pool.
    features = np.abs(np.random.default_rng(2).normal(size=(2, 10, 14, 4))).astype(np.float32)
    pooled = tf.nn.max_pool2d(features, 2, 2, "VALID")
    layer = MaxUnpooling2D(tie_tolerance=0)
    compiled = tf.function(lambda v, f: layer([v, f]), jit_compile=True)
    unpooled = np.asarray(compiled(pooled, features))
    np.testing.assert_array_equal(unpooled, argmax_reference(features, pooled))
    # Max-pooling the unpooled map gives the pooled map back.
    np.testing.assert_array_equal(np.asarray(tf.nn.max_pool2d(unpooled, 2, 2, "VALID")),
                                  np.asarray(pooled))


def test_gradients_flow_to_the_values_under_xla():
    features = tf.constant(np.random.default_rng(3).normal(size=(1, 4, 4, 2)), tf.float32)
    values = tf.Variable(tf.ones([1, 2, 2, 2]))

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(MaxUnpooling2D()([values, features]) * 3.0)
        return tape.gradient(total, values)

    # Each value's gradient is 3 x the sum of its window's switches (1 without ties).
    expected = 3.0 * switches_reference(np.asarray(features), 0.02).sum(-1)
    assert np.any(expected > 3.0)  # this input has a near tie inside the band
    np.testing.assert_allclose(np.asarray(gradient()), expected, rtol=1e-5)


def test_without_tolerance_ties_pick_the_first_position_in_row_major_order():
    features = np.array([[5, 5], [5, 1]], np.float32).reshape(1, 2, 2, 1)
    switches = np.asarray(max_pool_switches(tf.constant(features), tie_tolerance=0))
    assert switches.tolist() == [[[[[1.0, 0.0, 0.0, 0.0]]]]]
    unpooled = np.asarray(MaxUnpooling2D(tie_tolerance=0)(
        [np.full((1, 1, 1, 1), 9, np.float32), features]))
    assert unpooled[0, ..., 0].tolist() == [[9.0, 0.0], [0.0, 0.0]]


def switches_reference(features: np.ndarray, tolerance: float) -> np.ndarray:
    """Naive loop: relu(x - (max - band)) / band per window, band from the channel's max."""
    batch, height, width, channels = features.shape
    out = np.zeros((batch, height // 2, width // 2, channels, 4))
    for b in range(batch):
        for c in range(channels):
            band = tolerance * np.abs(features[b, :, :, c]).max()
            for i in range(height // 2):
                for j in range(width // 2):
                    window = features[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].ravel()
                    out[b, i, j, c] = np.maximum(window - (window.max() - band), 0) / band
    return out


def test_ties_and_near_ties_share_the_value_within_the_band():
    # Channel max |x| = 10, band = 0.2: exact ties get the whole value, a value 0.1
    # below the maximum half of it, 0.3 below nothing.
    features = np.array([[10, 10, 4, 3.9], [2, 9.9, 3.7, 1]], np.float32).reshape(1, 2, 4, 1)
    switches = np.asarray(max_pool_switches(tf.constant(features), tie_tolerance=0.02))
    np.testing.assert_allclose(switches[0, 0, :, 0], [[1, 1, 0, 0.5], [1, 0.5, 0, 0]],
                               atol=1e-5)
    rng = np.random.default_rng(6)
    features = rng.normal(size=(2, 6, 8, 3)).astype(np.float32)
    features[0, :2, :2] = 1.5  # an exact tie in every channel
    np.testing.assert_allclose(np.asarray(max_pool_switches(tf.constant(features), 0.05)),
                               switches_reference(features, 0.05), atol=1e-5)
    values = np.full((1, 1, 2, 1), 7, np.float32)
    unpooled = np.asarray(MaxUnpooling2D(tie_tolerance=0.02)(
        [values, np.array([[10, 10, 4, 3.9], [2, 9.9, 3.7, 1]],
                          np.float32).reshape(1, 2, 4, 1)]))
    np.testing.assert_allclose(unpooled[0, ..., 0], [[7, 7, 7, 3.5], [0, 3.5, 0, 0]],
                               atol=1e-4)


def test_a_rounding_error_moves_no_value_to_another_pixel():
    # Another runtime computes the encoder's activations with other rounding: two
    # near-equal values swap order. The first-maximum rule moves the whole value to the
    # neighbour; with the band, the output changes by the error / band only.
    features = np.array([[4.0, 4.0 + 2e-6], [0.5, 1.0]], np.float32).reshape(1, 2, 2, 1)
    other = np.array([[4.0 + 2e-6, 4.0], [0.5, 1.0]], np.float32).reshape(1, 2, 2, 1)
    values = np.full((1, 1, 1, 1), 3.0, np.float32)
    hard = MaxUnpooling2D(tie_tolerance=0)
    jump = np.abs(np.asarray(hard([values, features])) - np.asarray(hard([values, other])))
    assert jump.max() == 3.0
    soft = MaxUnpooling2D()
    drift = np.abs(np.asarray(soft([values, features])) - np.asarray(soft([values, other])))
    assert drift.max() <= 3.0 * 2e-6 / (0.02 * 4.0) * 1.01


def test_no_gradient_flows_into_the_switches():
    features = tf.Variable(np.random.default_rng(7).normal(size=(1, 4, 4, 2)).astype("float32"))
    features[0, 0, 0, 0].assign(features[0, 0, 1, 0])  # a tie
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(MaxUnpooling2D()([tf.ones([1, 2, 2, 2]), features]))
    assert tape.gradient(total, features) is None


def test_tie_tolerance_out_of_range_is_refused():
    with pytest.raises(ValueError, match="tie_tolerance"):
        MaxUnpooling2D(tie_tolerance=-0.1)
    with pytest.raises(ValueError, match="tie_tolerance"):
        max_pool_switches(tf.zeros([1, 2, 2, 1]), tie_tolerance=1.5)


def test_odd_sizes_match_a_same_padded_pool():
    features = np.random.default_rng(4).normal(size=(1, 5, 7, 2)).astype(np.float32)
    pooled = tf.nn.max_pool2d(features, 2, 2, "SAME")
    unpooled = np.asarray(MaxUnpooling2D(tie_tolerance=0)([pooled, features]))
    assert unpooled.shape == features.shape
    # Every pooled value appears once, at a position holding that maximum.
    np.testing.assert_allclose(np.sort(unpooled[unpooled != 0]), np.sort(np.ravel(pooled)))
    assert np.all(unpooled[unpooled != 0] == features[unpooled != 0])


def test_layer_round_trips_in_a_keras_file(tmp_path):
    features_in = keras.Input((4, 6, 2))
    pooled = keras.layers.MaxPooling2D(2, padding="same")(features_in)
    outputs = MaxUnpooling2D(tie_tolerance=0.05, name="unpool")([pooled, features_in])
    model = keras.Model(features_in, outputs)
    assert model.output_shape == (None, 4, 6, 2)
    path = tmp_path / "unpool.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects needed
    assert restored.get_layer("unpool").tie_tolerance == 0.05
    x = np.random.default_rng(5).normal(size=(2, 4, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(model(x)))
