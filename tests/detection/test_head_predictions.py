"""`head_predictions`: a detector's raw outputs with boxes and scores never in one tensor.

keras-cv's YOLOv8 head joins the box logits (tens) and sigmoid scores (0..1) of each
level in one concatenation, whose single int8 scale collapses the scores; the portable
exports take the per-level tensors before it. One tiny untrained YOLOv8 (module scope).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.models.detection import head_predictions

SHAPE = (32, 64, 3)


@pytest.fixture(scope="module")
def detector():
    model = vk.models.build("yolov8", input_shape=SHAPE, num_classes=3)
    # Untrained, the last convolutions give values near 0 everywhere; random weights give
    # each anchor and channel its own value, so a wrong order or level would show.
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.name.endswith(("_box_3_conv", "_class_3_conv")):
            layer.set_weights([rng.normal(0, 1, w.shape).astype("float32")
                               for w in layer.get_weights()])
    return model


def test_yolo_v8_split_head_equals_the_models_own_outputs(detector):
    images = np.random.default_rng(0).integers(0, 256, (2, *SHAPE)).astype(np.float32)
    expected = detector(images, training=False)
    served = head_predictions(detector)(tf.constant(images))
    assert sorted(served) == ["boxes", "classes"]
    # Same per-level layers, joined in keras-cv's order: the same values, bit for bit.
    for key in ("boxes", "classes"):
        assert served[key].dtype == tf.float32
        np.testing.assert_array_equal(served[key].numpy(), np.asarray(expected[key]))
    # Anchors of three levels (strides 8, 16, 32): 4x8 + 2x4 + 1x2; scores are sigmoids.
    assert served["boxes"].shape == (2, 42, 64) and served["classes"].shape == (2, 42, 3)
    scores = served["classes"].numpy()
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert np.abs(served["boxes"].numpy()).max() > 1.0  # box logits span a wider range
    # Nearly every value distinct (a few anchors on flat borders coincide).
    assert len(np.unique(served["boxes"].numpy())) >= 0.99 * served["boxes"].numpy().size


def test_a_yolo_v8_without_keras_cvs_head_layers_is_refused_naming_the_layer():
    model = vk.models.build("yolov8", input_shape=SHAPE, num_classes=2)
    model.get_layer("yolo_v8_head_2_classifier").name = "renamed_classifier"
    with pytest.raises(ValueError, match=r"'yolo_v8_head_2_classifier'\] not found.*"
                                         r"vk.export.saved_model"):
        head_predictions(model)


def test_retinanet_is_called_as_it_is_and_other_models_refused():
    # keras-cv's RetinaNet concatenates its `box` and `classification` outputs apart.
    model = vk.models.build("retinanet", input_shape=(64, 64, 3), num_classes=2,
                            backbone="resnet18")
    images = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3)).astype(np.float32)
    served = head_predictions(model)(tf.constant(images))
    expected = model(images, training=False)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(served[key]), np.asarray(expected[key]))
    with pytest.raises(TypeError, match="Expected a detector.*received Functional"):
        head_predictions(vk.models.build("simple_cnn", input_shape=(16, 16, 3),
                                         num_classes=2, filters=(4,)))


@pytest.mark.parametrize("renamed", ["yolo_v8_head_3_box_3_conv", "yolo_v8_head_1_box_3_conv"])
def test_a_yolo_v8_missing_one_levels_box_layer_is_refused_not_served_short(renamed):
    # Renaming the last level's box layer used to end the level count at 2: the portable
    # graph then served 40 of the 42 anchors, silently.
    model = vk.models.build("yolov8", input_shape=SHAPE, num_classes=2)
    model.get_layer(renamed).name = "renamed_box"
    with pytest.raises(ValueError, match=rf"\['{renamed}'\] not found"):
        head_predictions(model)
