"""Explanations of segmenters: the task resolves the target, occlusion runs on a U-Net."""

from __future__ import annotations

import numpy as np

import visionkit as vk
from visionkit.interpret.targets import SegmentationScore


def test_segmentation_task_explains_segmenters_only():
    segmenter = vk.models.build("unet", (16, 24, 3), 3, depth=2, filters=4)
    classifier = vk.models.build("simple_cnn", (16, 24, 3), 3, filters=(4,))
    task = vk.tasks.get_task("segmentation")
    assert task.explains(segmenter) and not task.explains(classifier)
    target = task.explain_target(segmenter, 2)
    assert isinstance(target, SegmentationScore) and target.class_id == 2
    assert not target.from_logits
    logits = vk.models.build("unet", (16, 24, 3), 3, depth=2, filters=4, activation=None)
    assert task.explain_target(logits).from_logits


def test_occlusion_of_a_segmenter_is_zero_where_the_target_cannot_change():
    # A constant model output cannot depend on any patch: the map is zero everywhere.
    model = vk.models.build("unet", (16, 24, 3), 3, depth=2, filters=4)
    for variable in model.variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    heat = vk.interpret.occlusion(model, images, target=1, patch_size=8, stride=8)
    assert heat.shape == (2, 16, 24)
    np.testing.assert_allclose(heat, 0.0, atol=1e-6)
