"""The siamese network on the plain CNN, flattened: the network a recipe names for unseen
classes (tests/metric/test_unseen_digits_slow.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.models.embedding.plain_cnn import plain_cnn_features

SHAPE = (16, 16, 3)


@pytest.fixture(scope="module")
def flattened():
    keras.utils.set_random_seed(0)
    return vk.models.build("siamese", input_shape=SHAPE, backbone="plain_cnn",
                           pooling="flatten", embedding_dim=None)


def _images(count=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, *SHAPE)).astype("float32")


def test_plain_cnn_is_four_relu_convolutions_and_one_pool_without_batch_norm(flattened):
    kinds = [type(layer).__name__ for layer in flattened.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("MaxPooling2D") == 1
    assert "BatchNormalization" not in kinds and "Dense" not in kinds
    convs = [flattened.get_layer(f"stage{s}_conv{i}") for s in (1, 2) for i in (1, 2)]
    assert [c.filters for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (3, 3) and c.activation is keras.activations.relu
               for c in convs)
    assert flattened.output_shape == (None, 8 * 8 * 64)


def test_flattened_embedding_is_the_last_map_in_row_major_order_divided_by_its_length(
        flattened):
    images = _images()
    last_map = np.asarray(keras.Model(flattened.input,
                                      flattened.get_layer("stage2_conv2").output)(images))
    # Reference: NumPy's row-major flattening of [B, 8, 8, 64], then unit length.
    vectors = last_map.reshape(len(images), -1)
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(flattened(images)), expected, atol=1e-5)
    # The pixels are rescaled inside: the first convolution sees images / 255.
    first = flattened.get_layer("stage1_conv1")
    kernel, bias = (np.asarray(w) for w in first.weights)
    # The 3x3 window around pixel (8, 8), inside the image (no padding involved).
    window = images[:, 7:10, 7:10, :] / 255.0
    expected_first = np.maximum(np.einsum("bhwc,hwcf->bf", window, kernel) + bias, 0.0)
    got = np.asarray(keras.Model(flattened.input, first.output)(images))[:, 8, 8, :]
    np.testing.assert_allclose(got, expected_first, atol=1e-4)


def test_stages_choose_the_depth_and_average_pooling_stays_the_default():
    inputs = keras.Input((8, 8, 3))
    assert tuple(plain_cnn_features(inputs, stages=[[4], [6], [8], [10]]).shape) == \
        (None, 1, 1, 10)
    model = vk.models.build("siamese", input_shape=SHAPE, backbone="plain_cnn",
                            backbone_options={"stages": [[8], [12]]}, embedding_dim=5)
    assert model.get_layer("avg_pool") is not None and model.output_shape == (None, 5)


@pytest.mark.parametrize("options, match", [
    ({"stages": []}, "stages as a list"),
    ({"stages": [[32, 0]]}, r"stage \[32, 0\]"),
    ({"stages": [32, 64]}, "stage 32"),
    ({"stages": "32,64"}, "stages as a list"),
    ({"width_multiplier": 0.5}, "takes only the option 'stages'"),
    ({"stages": [[4]] * 6}, "at least 32x32 pixels"),
])
def test_bad_plain_cnn_options_name_what_was_received(options, match):
    with pytest.raises(ValueError, match=match):
        vk.models.build("siamese", input_shape=SHAPE, backbone="plain_cnn",
                        backbone_options=options)


def test_bad_pooling_is_an_error_naming_it():
    with pytest.raises(ValueError, match="pooling='max'"):
        vk.models.build("siamese", input_shape=SHAPE, backbone="plain_cnn", pooling="max")
    with pytest.raises(ValueError, match="known size"):
        vk.models.build("siamese", input_shape=(None, None, 3), backbone="plain_cnn",
                        pooling="flatten")
    with pytest.raises(ValueError, match="no weights"):
        vk.models.build("siamese", input_shape=SHAPE, backbone="plain_cnn",
                        backbone_weights="imagenet")
