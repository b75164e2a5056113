"""Progress bars between compiled chunks, and Grad-CAM's default layer."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret.layers import cam_layer


def test_occlusion_in_groups_shows_progress_and_equals_one_call(tiny_model, capsys,
                                                                  monkeypatch):
    images = np.random.default_rng(5).uniform(0, 255, (5, 24, 32, 3)).astype("float32")
    # One class per image: each group must be scored on its own images' classes.
    classes = [0, 1, 2, 1, 0]
    whole = vk.interpret.occlusion(tiny_model, images, classes, patch_size=8, stride=8,
                                   verbose=0)
    assert capsys.readouterr().out == ""
    # 12 patches per image: at most 24 copies per call makes three groups of 2, 2, 1.
    monkeypatch.setattr(sys.modules["visionkit.interpret.occlusion"], "IMAGES_PER_CALL_COPIES",
                        24)
    grouped = vk.interpret.occlusion(tiny_model, images, classes, patch_size=8, stride=8)
    assert "3/3" in capsys.readouterr().out
    np.testing.assert_allclose(grouped, whole, atol=1e-6)


@pytest.mark.parametrize("verbose, shown", [(0, False), (1, True)])
def test_deep_dream_and_filters_count_octaves(tiny_model, capsys, verbose, shown):
    vk.interpret.deep_dream(tiny_model, np.full((24, 32, 3), 128.0), ["conv2"], octaves=2,
                            steps=1, verbose=verbose)
    assert ("2/2" in capsys.readouterr().out) == shown
    vk.interpret.filters(tiny_model, "conv2", [0, 1], steps=1, octaves=2, verbose=verbose)
    assert ("2/2" in capsys.readouterr().out) == shown


def test_feature_batches_show_progress(tiny_model, tiny_images, capsys):
    from visionkit.interpret.embed import features

    batched = features(tiny_model, tiny_images, "conv2", batch_size=1)
    assert "3/3" in capsys.readouterr().out
    np.testing.assert_allclose(batched, features(tiny_model, tiny_images, "conv2",
                                                 verbose=0), rtol=1e-5, atol=1e-6)


def test_cam_layer_is_the_last_map_at_least_an_eighth_of_the_input():
    # 64x64 through four blocks: relu4 is 8x8 (1/8), pool4 4x4 (1/16).
    model = vk.models.build("simple_cnn", (64, 64, 3), 3, filters=(4, 4, 4, 4))
    assert cam_layer(model) == "relu4"
    # Two blocks: nothing is coarser than 1/8, so the last spatial layer.
    assert cam_layer(vk.models.build("simple_cnn", (64, 64, 3), 3, filters=(4, 4))) == "pool2"
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(vk.interpret.grad_cam(model, images, target=1),
                               vk.interpret.grad_cam(model, images, target=1, layer="relu4"))
