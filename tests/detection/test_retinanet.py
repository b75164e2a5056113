"""RetinaNet on a registry backbone: fit, evaluate and export with NMS (slow: one more
keras-cv detector trace, so it stays out of the default run)."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.models.detection import detect


@pytest.mark.slow
def test_retinanet_trains_evaluates_and_serves(tmp_path):
    data = vk.data.shapes("detection", n=32, image_size=(64, 64), seed=0, batch_size=8,
                          classes=2, validation_split=0.25)
    run = vk.train.fit("retinanet", data, epochs=1, steps_per_epoch=2, verbose=0,
                       model_kwargs={"backbone_options": {"width_multiplier": 0.25},
                                     "anchor_sizes": (16, 32, 64, 128, 256),
                                     "confidence_threshold": 0.01})
    assert {"map", "map50", "ap_per_class"} <= set(run.metrics)
    path = vk.export.saved_model(run.model, str(tmp_path), data=data)  # verifies itself
    images = next(iter(data.val))[0].numpy()
    served = vk.export.load(path)(images.astype(np.uint8))
    ours = detect(run.model, images.astype(np.uint8).astype(np.float32))
    np.testing.assert_array_equal(served["num_detections"], ours["num_detections"])
    np.testing.assert_allclose(served["boxes"], ours["boxes"], atol=1e-3)
