"""Activation maximization of many filters at once, and the most activating images."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret.filters import start_images


def test_each_image_maximizes_its_own_filter(trained_digits):
    model, _ = trained_digits
    ids = list(range(16))
    pictures = vk.interpret.filters(model, "relu3", ids, steps=64)
    assert pictures.shape == (16, 16, 16, 3) and pictures.dtype == np.uint8
    # activations[i, j]: mean activation of filter j on image i.
    activations = vk.interpret.filter_activations(model, "relu3", pictures.astype("float32"),
                                                  ids)
    np.testing.assert_array_equal(activations.argmax(axis=0), ids)
    start = start_images(ids, (16, 16), 3)
    before = np.diag(vk.interpret.filter_activations(model, "relu3", start, ids))
    growth = np.diag(activations) / np.maximum(before, 1e-6)
    assert np.median(growth) >= 50, growth.round(1)
    assert growth.min() >= 2, growth.round(1)


def test_one_filter_alone_equals_its_row_in_a_batch(tiny_model):
    """Images are optimized independently: filter 2 alone gives the batch's image 2."""
    batch = vk.interpret.filters(tiny_model, "conv2", [5, 2, 7], steps=6, jitter=0)
    alone = vk.interpret.filters(tiny_model, "conv2", [2], steps=6, jitter=0)
    assert np.abs(batch[1].astype(int) - alone[0].astype(int)).max() <= 1


def test_filters_with_blur_decay_and_octaves_on_a_nested_backbone(nested_model):
    pictures = vk.interpret.filters(nested_model, "inner_conv2", range(6), steps=4,
                                    blur_every=2, decay=0.05, octaves=2)
    assert pictures.shape == (6, 20, 28, 3)
    assert len({picture.tobytes() for picture in pictures}) == 6


def test_filter_ids_out_of_range(tiny_model):
    with pytest.raises(ValueError, match=r"filter ids in \[0, 7\].*conv2"):
        vk.interpret.filters(tiny_model, "conv2", [3, 8], steps=1)


def test_top_activating_ranks_images_by_their_strongest_response(tiny_model, tiny_images):
    result = vk.interpret.top_activating(tiny_model, tiny_images, "conv2", 3, k=2,
                                         patch_size=6)
    maps = vk.interpret.activations(tiny_model, tiny_images, ["conv2"])["conv2"][..., 3]
    strongest = maps.reshape(3, -1).max(axis=1)
    np.testing.assert_array_equal(result["indices"], np.argsort(-strongest)[:2])
    np.testing.assert_allclose(result["scores"], np.sort(strongest)[::-1][:2], rtol=1e-5)
    assert result["patches"].shape == (2, 6, 6, 3)
