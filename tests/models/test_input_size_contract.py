"""Every builder refuses an input smaller than its documented minimum at build time,
naming the size received and the minimum, instead of building a model whose feature
maps shrink to nothing (or to less than its downsampling needs)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tiny_models import documented_minimum

import visionkit as vk
from visionkit.models.classification.simple_cnn import default_filters
from visionkit.models.segmentation.segnet import default_stages
from visionkit.testing import NUM_CLASSES, tiny_model_kwargs

NAMES = vk.models.available("classification") + vk.models.available("segmentation")
LIMITED = [name for name in NAMES if documented_minimum(name) is not None]


def test_every_fixed_size_builder_documents_its_minimum():
    # The segmentation models pad inside (any size); every classifier downsamples to a
    # fixed depth and must say how small an input it takes, except the one that adapts
    # its depth to the input (simple_cnn: "pools until the last map is at least 2x2").
    assert sorted(set(vk.models.available("classification")) - set(LIMITED)) == [
        "simple_cnn"]


@pytest.mark.parametrize("name", LIMITED)
@pytest.mark.parametrize("axis", [0, 1])
def test_one_pixel_below_the_minimum_is_refused_naming_both(name, axis):
    minimum = documented_minimum(name)
    shape = [minimum, minimum, 3]
    shape[axis] -= 1
    with pytest.raises(ValueError) as error:
        vk.models.build(name, tuple(shape), NUM_CLASSES, **tiny_model_kwargs(name))
    message = str(error.value)
    assert f"at least {minimum}x{minimum}" in message, message
    assert re.search(rf"\(?{shape[0]}, {shape[1]}, 3\)?", message), message


def test_simple_cnn_needs_a_pixel_per_pooling():
    # Three 2x2 poolings: 8x8 -> 1x1; with 7 rows Keras would refuse a 0-row pooling
    # without naming the model or its minimum.
    with pytest.raises(ValueError, match=r"least 8x8 pixels; received input_shape=\(7, 9, 3\)"):
        vk.models.build("simple_cnn", (7, 9, 3), NUM_CLASSES, filters=(4, 4, 4))
    model = vk.models.build("simple_cnn", (8, 9, 3), NUM_CLASSES, filters=(4, 4, 4))
    assert model.get_layer("pool3").output.shape[1:3] == (1, 1)



def test_a_side_given_as_none_takes_any_size():
    # (None, None, 3) builds a network for images of any size (the style-transfer and
    # feature-visualisation models); the minimum still holds on a side that is given.
    model = vk.models.build("simple_cnn", (None, None, 3), NUM_CLASSES, filters=(4, 8))
    assert tuple(model(np.zeros((1, 20, 28, 3), np.float32)).shape) == (1, NUM_CLASSES)
    with pytest.raises(ValueError, match=r"least 4x4 pixels; received input_shape=\(None, 3, 3\)"):
        vk.models.build("simple_cnn", (None, 3, 3), NUM_CLASSES, filters=(4, 8))
    with pytest.raises(ValueError, match=r"input_shape=\(None, None, 3\) gives no height"):
        vk.models.build("simple_cnn", (None, None, 3), NUM_CLASSES)
    assert default_filters((None, 32, 1)) == default_filters((32, 32, 1))
    assert default_stages((None, None, 3)) == 5
    assert default_stages((None, 64, 3)) == default_stages((64, 64, 3)) == 4
