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
    unpooled = np.asarray(MaxUnpooling2D()([values, features]))
    np.testing.assert_array_equal(unpooled, argmax_reference(features, values))


def test_pooled_values_return_to_their_maxima_under_xla():
    # Positive values, so that the zeros unpooling writes never win a later max pool.
    features = np.abs(np.random.default_rng(2).normal(size=(2, 10, 14, 4))).astype(np.float32)
    pooled = tf.nn.max_pool2d(features, 2, 2, "VALID")
    layer = MaxUnpooling2D()
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

    np.testing.assert_array_equal(np.asarray(gradient()), np.full([1, 2, 2, 2], 3.0))


def test_ties_pick_exactly_one_position_the_first_in_row_major_order():
    features = np.array([[5, 5], [5, 1]], np.float32).reshape(1, 2, 2, 1)
    switches = np.asarray(max_pool_switches(tf.constant(features)))
    assert switches.tolist() == [[[[[1.0, 0.0, 0.0, 0.0]]]]]
    unpooled = np.asarray(MaxUnpooling2D()([np.full((1, 1, 1, 1), 9, np.float32), features]))
    assert unpooled[0, ..., 0].tolist() == [[9.0, 0.0], [0.0, 0.0]]


def test_odd_sizes_match_a_same_padded_pool():
    features = np.random.default_rng(4).normal(size=(1, 5, 7, 2)).astype(np.float32)
    pooled = tf.nn.max_pool2d(features, 2, 2, "SAME")
    unpooled = np.asarray(MaxUnpooling2D()([pooled, features]))
    assert unpooled.shape == features.shape
    # Every pooled value appears once, at a position holding that maximum.
    np.testing.assert_allclose(np.sort(unpooled[unpooled != 0]), np.sort(np.ravel(pooled)))
    assert np.all(unpooled[unpooled != 0] == features[unpooled != 0])


def test_layer_round_trips_in_a_keras_file(tmp_path):
    features_in = keras.Input((4, 6, 2))
    pooled = keras.layers.MaxPooling2D(2, padding="same")(features_in)
    outputs = MaxUnpooling2D(name="unpool")([pooled, features_in])
    model = keras.Model(features_in, outputs)
    assert model.output_shape == (None, 4, 6, 2)
    path = tmp_path / "unpool.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects needed
    x = np.random.default_rng(5).normal(size=(2, 4, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(model(x)))
