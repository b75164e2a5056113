"""YOLOv8 with keras-cv's COCO backbone weights, served by a folder mirror (offline)."""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pytest
from pretrained_helpers import saved_weights, write_legacy_weights

import visionkit as vk
from visionkit.models import pretrained
from visionkit.models.detection import detection_backbone

SHAPE = (64, 64, 3)


@pytest.fixture
def coco_mirror(tmp_path, monkeypatch):
    """A generated 'yolo_v8_xs_coco' file registered with its SHA-256 on a folder mirror."""
    keras.utils.set_random_seed(5)
    source = detection_backbone("yolo_v8_xs", SHAPE)
    builtin = pretrained.get_pretrained("yolo_v8_xs_coco")
    folder = tmp_path / "mirror"
    folder.mkdir()
    data = write_legacy_weights(source, folder / builtin.file_name)
    saved = dict(pretrained._REGISTRY)
    pretrained.register_pretrained(pretrained.PretrainedWeights(
        builtin.name, "yolo_v8_xs", "coco", builtin.file_name, builtin.origin,
        hashlib.sha256(data).hexdigest(), input_size=640), replace=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISIONKIT_WEIGHTS_MIRROR", str(folder))
    monkeypatch.setenv("VISIONKIT_WEIGHTS_OFFLINE", "1")
    yield folder / builtin.file_name
    pretrained._REGISTRY.restore(saved)


def test_yolov8_coco_backbone_weights_load_bit_exactly(coco_mirror):
    keras.utils.set_random_seed(6)
    model = vk.models.build("yolov8", SHAPE, 2, backbone_weights="coco")
    expected = saved_weights(coco_mirror)
    assert len(expected) > 10
    for layer_name, arrays in expected.items():
        actual = model.backbone.get_layer(layer_name).get_weights()
        for got, want in zip(actual, arrays, strict=True):
            assert np.array_equal(got, want), layer_name
    with pytest.raises(ValueError, match=r"COCO weights for the YOLOv8 backbones.*'coco'"):
        vk.models.build("yolov8", SHAPE, 2, backbone_weights="imagenet")
