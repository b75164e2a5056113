"""Occlusion against a naive patch-by-patch reference, on square and non-square images."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk


def naive_occlusion(model, images, target, patch, stride):
    """One forward pass per patch, written independently of the batched version."""
    batch, height, width, _ = images.shape
    result = np.zeros((batch, height, width))
    for b in range(batch):
        image = images[b]
        fill = image.mean(axis=(0, 1))
        reference = float(np.asarray(model(image[None]))[0, target])
        total, count = np.zeros((height, width)), np.zeros((height, width))
        for top in range(0, height, stride):
            for left in range(0, width, stride):
                copy = image.copy()
                copy[top:top + patch, left:left + patch] = fill
                drop = reference - float(np.asarray(model(copy[None]))[0, target])
                total[top:top + patch, left:left + patch] += drop
                count[top:top + patch, left:left + patch] += 1
        result[b] = total / count
    return result


@pytest.mark.parametrize("shape, patch, stride", [((24, 32, 3), 8, 4), ((20, 20, 3), 6, 5),
                                                  ((16, 28, 1), 5, 3)])
def test_occlusion_equals_naive_loop(shape, patch, stride):
    import keras

    keras.utils.set_random_seed(3)
    model = vk.models.build("simple_cnn", shape, 3, filters=(4, 8), activation=None)
    images = np.random.default_rng(1).uniform(0, 255, (2, *shape)).astype("float32")
    fast = vk.interpret.occlusion(model, images, target=2, patch_size=patch, stride=stride,
                                  batch_size=7)
    reference = naive_occlusion(model, images, 2, patch, stride)
    assert fast.shape == (2, *shape[:2])
    assert np.abs(reference).max() > 1e-4  # the maps are not trivially zero
    np.testing.assert_allclose(fast, reference, atol=1e-5, rtol=0)


def test_occlusion_hand_computed_on_a_linear_model():
    """A model whose class-0 score is the sum of the top-left pixel's channels."""
    import keras

    inputs = keras.Input((4, 6, 1))
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(flat))
    kernel = np.zeros((24, 1), "float32")
    kernel[0] = 1.0  # pixel (0, 0)
    dense.set_weights([kernel])
    image = np.zeros((1, 4, 6, 1), "float32")
    image[0, 0, 0, 0] = 24.0  # mean of the image = 1
    heat = vk.interpret.occlusion(model, image, target=0, patch_size=2, stride=2)
    # Only the patch at (0, 0) covers pixel (0, 0): it drops the score from 24 to 1.
    expected = np.zeros((4, 6))
    expected[:2, :2] = 23.0
    np.testing.assert_allclose(heat[0], expected, atol=1e-5)


def test_occlusion_follows_the_predicted_class_per_image(tiny_model, tiny_images):
    predicted = np.asarray(tiny_model(tiny_images)).argmax(axis=1)
    default = vk.interpret.occlusion(tiny_model, tiny_images, patch_size=8, stride=8)
    explicit = vk.interpret.occlusion(tiny_model, tiny_images, target=predicted, patch_size=8,
                                      stride=8)
    np.testing.assert_allclose(default, explicit, atol=1e-6)


def test_occlusion_on_nested_backbone(nested_model):
    images = np.random.default_rng(2).uniform(0, 255, (1, 20, 28, 3)).astype("float32")
    fast = vk.interpret.occlusion(nested_model, images, target=1, patch_size=8, stride=6)
    reference = naive_occlusion(nested_model, images, 1, 8, 6)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
