"""Images scaled to 0..1 handed to interpretation functions (whose models take raw 0..255
pixels) are said once per call, naming the function, the range and the largest value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import visionkit as vk

ENTRY_POINTS = {
    "grad_cam": lambda model, images: vk.interpret.grad_cam(model, images),
    "occlusion": lambda model, images: vk.interpret.occlusion(model, images, patch_size=8,
                                                              stride=8),
    "saliency": lambda model, images: vk.interpret.saliency(model, images),
    "pgd": lambda model, images: vk.interpret.pgd(model, images, steps=1),
}


def _pixel_range_warnings(call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return [w for w in record if issubclass(w.category, vk.interpret.PixelRangeWarning)]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_images_scaled_to_0_1_warn_once_naming_the_range(name, tiny_model, tiny_images):
    scaled = tiny_images / 255.0
    found = _pixel_range_warnings(lambda: ENTRY_POINTS[name](tiny_model, scaled))
    assert len(found) == 1
    message = str(found[0].message)
    low, high = float(scaled.min()), float(scaled.max())
    assert message.startswith(f"{name}: the values of images lie in [{low:g}, {high:g}] "
                              f"(max {high:g})")
    assert f"model {tiny_model.name!r} expects raw 0..255 pixels" in message
    assert found[0].filename == __file__  # the user's line, not visionkit's
    assert issubclass(found[0].category, UserWarning)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_raw_pixels_do_not_warn(name, tiny_model, tiny_images):
    assert not _pixel_range_warnings(lambda: ENTRY_POINTS[name](tiny_model, tiny_images))
    # Dark raw pixels whose largest value is above 1 are no scaled images either.
    dark = np.clip(tiny_images, 0, 2)
    assert not _pixel_range_warnings(lambda: ENTRY_POINTS[name](tiny_model, dark))


def test_integer_and_black_images_do_not_warn(tiny_model, tiny_images):
    binary = (tiny_images > 128).astype(np.uint8)  # values 0 and 1, but whole pixels
    assert not _pixel_range_warnings(lambda: vk.interpret.grad_cam(tiny_model, binary))
    black = np.zeros_like(tiny_images)
    assert not _pixel_range_warnings(lambda: vk.interpret.grad_cam(tiny_model, black))


def test_a_call_running_several_methods_warns_once(tiny_model, tiny_images):
    found = _pixel_range_warnings(lambda: vk.interpret.compare(
        tiny_model, tiny_images / 255.0, methods=("grad_cam", "saliency"),
        metrics=("sparseness",), verbose=0))
    assert len(found) == 1 and str(found[0].message).startswith("compare: ")
    # Two calls are two warnings.
    found = _pixel_range_warnings(lambda: [vk.interpret.grad_cam(tiny_model, tiny_images / 255),
                                           vk.interpret.saliency(tiny_model, tiny_images / 255)])
    assert [str(w.message).split(":")[0] for w in found] == ["grad_cam", "saliency"]


@pytest.mark.parametrize("name", sorted(set(ENTRY_POINTS) - {"pgd"}))  # pgd refuses < 0
def test_images_scaled_to_minus_1_1_warn_once(name, tiny_model, tiny_images):
    # What keras.applications' preprocess_input does for MobileNet, Inception, Xception.
    scaled = (tiny_images / 127.5 - 1.0).astype(np.float32)
    found = _pixel_range_warnings(lambda: ENTRY_POINTS[name](tiny_model, scaled))
    assert len(found) == 1
    message = str(found[0].message)
    assert message.startswith(f"{name}: the values of images lie in "
                              f"[{float(scaled.min()):g}, {float(scaled.max()):g}]")
    assert "look scaled to -1..1" in message and "pass (images + 1) * 127.5" in message
    assert found[0].filename == __file__


def test_raw_pixels_below_zero_or_beyond_1_do_not_warn(tiny_model, tiny_images):
    # Mean-subtracted raw pixels (caffe-style) reach well beyond -1..1.
    centred = tiny_images.astype(np.float32) - 128.0
    assert not _pixel_range_warnings(lambda: vk.interpret.grad_cam(tiny_model, centred))
    slightly = np.where(tiny_images > 128, 1.5, -0.5).astype(np.float32)
    assert not _pixel_range_warnings(lambda: vk.interpret.grad_cam(tiny_model, slightly))
