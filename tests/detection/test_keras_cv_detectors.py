"""Detectors visionkit did not build: keras-cv's own `YOLOV8Detector` and `RetinaNet`, and
the task a detector states by its class (exports without `data=` or `task=`).

The models are tiny and untrained; the decoding and NMS of the portable graph are traced
but never converted (conversions take tens of seconds; the slow test does one).
"""

from __future__ import annotations

import warnings

import keras_cv
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.export.exporter import _export_spec
from visionkit.export.portable import portable_function
from visionkit.models.detection import (
    compile_detector,
    detect,
    detection_backbone,
    from_keras_cv,
    head_predictions,
    is_detector,
)
from visionkit.vocabulary import get_task

SHAPE = (64, 64, 3)
MAX_DETECTIONS = 20


def _keras_cv_yolo(box_format: str) -> keras_cv.models.YOLOV8Detector:
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=[8, 16, 16, 16], stackwise_depth=[1, 1, 1, 1],
        include_rescaling=True, input_shape=SHAPE)
    # Threshold 0 so that the untrained head gives detections to compare.
    decoder = keras_cv.layers.NonMaxSuppression(
        bounding_box_format=box_format, from_logits=False, confidence_threshold=0.0,
        iou_threshold=0.5, max_detections=MAX_DETECTIONS)
    model = keras_cv.models.YOLOV8Detector(
        num_classes=2, bounding_box_format=box_format, backbone=backbone, fpn_depth=1,
        prediction_decoder=decoder)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # random last convolutions: boxes of many sizes and places
        if layer.name.endswith(("_box_3_conv", "_class_3_conv")):
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32")
                               for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def yolo_xywh():
    return _keras_cv_yolo("xywh")


def _as_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """A NumPy reference of keras-cv's formats, independent of its `convert_format`."""
    a, b, c, d = np.moveaxis(boxes, -1, 0)
    if box_format == "xywh":
        return np.stack([a, b, a + c, b + d], -1)
    if box_format == "center_yxhw":  # (y, x, h, w) centre
        return np.stack([b - d / 2, a - c / 2, b + d / 2, a + c / 2], -1)
    raise AssertionError(box_format)


def _keras_cv_detections(model, images):
    """keras-cv's own prediction path (`predict` decodes and runs its NMS)."""
    return {key: np.asarray(value) for key, value in model.predict(images, verbose=0).items()}


def test_a_keras_cv_yolo_v8_is_a_detector_and_its_boxes_come_back_xyxy(yolo_xywh, images):
    assert is_detector(yolo_xywh) and not isinstance(yolo_xywh, vk.models.detection
                                                     .VisionkitYOLOV8Detector)
    theirs = _keras_cv_detections(yolo_xywh, images)
    ours = detect(yolo_xywh, images)
    np.testing.assert_array_equal(ours["num_detections"], theirs["num_detections"])
    assert ours["num_detections"].min() > 0
    for index, count in enumerate(ours["num_detections"]):
        expected = np.clip(_as_xyxy(theirs["boxes"][index, :count], "xywh"), 0, 64)
        np.testing.assert_allclose(ours["boxes"][index, :count], expected, atol=1e-3)
        np.testing.assert_array_equal(ours["classes"][index, :count],
                                      theirs["classes"][index, :count])
    # Its raw predictions split before the joined head equal its own outputs, bit for bit.
    raw = yolo_xywh(images, training=False)
    split = head_predictions(yolo_xywh)(tf.constant(images))
    for key in ("boxes", "classes"):
        np.testing.assert_array_equal(split[key].numpy(), np.asarray(raw[key]))


def test_the_portable_graph_of_a_keras_cv_yolo_v8_serves_the_same_xyxy_boxes(
        yolo_xywh, images):
    # The portable NMS (builtin ops) reads boxes in the decoder's format: xywh here.
    function = portable_function(yolo_xywh, get_task("detection"), SHAPE[:2])
    ours = detect(yolo_xywh, images)
    for index in range(len(images)):
        served = {k: v.numpy()[0] for k, v in
                  function(tf.constant(images[index:index + 1], tf.uint8)).items()}
        count = int(served["num_detections"])
        assert count == ours["num_detections"][index]
        np.testing.assert_allclose(served["boxes"][:count], ours["boxes"][index, :count],
                                   atol=1e-3)
        np.testing.assert_allclose(served["scores"][:count], ours["scores"][index, :count],
                                   atol=1e-5)


def test_a_keras_cv_retinanet_in_another_box_format_is_served_xyxy(images):
    anchors = keras_cv.layers.AnchorGenerator(
        bounding_box_format="center_yxhw", sizes=[16.0, 32.0, 64.0, 128.0, 256.0],
        aspect_ratios=[0.5, 1.0, 2.0], scales=[1.0, 2 ** (1 / 3), 2 ** (2 / 3)], strides=[2 ** i for i in range(3, 8)],
        clip_boxes=True)
    decoder = keras_cv.layers.MultiClassNonMaxSuppression(
        bounding_box_format="center_yxhw", from_logits=True, confidence_threshold=0.0,
        max_detections=MAX_DETECTIONS, max_detections_per_class=MAX_DETECTIONS)
    model = keras_cv.models.RetinaNet(
        num_classes=2, bounding_box_format="center_yxhw", anchor_generator=anchors,
        prediction_decoder=decoder,
        backbone=detection_backbone("resnet18", SHAPE, {"width_multiplier": 0.25}))
    assert is_detector(model)
    theirs = _keras_cv_detections(model, images)
    ours = detect(model, images)
    np.testing.assert_array_equal(ours["num_detections"], theirs["num_detections"])
    for index, count in enumerate(ours["num_detections"]):
        expected = np.clip(_as_xyxy(theirs["boxes"][index, :count], "center_yxhw"), 0, 64)
        np.testing.assert_allclose(ours["boxes"][index, :count], expected, atol=1e-3)


def test_training_a_keras_cv_detector_says_how_to_convert_it(yolo_xywh, images):
    with pytest.raises(TypeError, match=r"YOLOV8Detector.*'classes'.*from_keras_cv\(model\)"):
        compile_detector(yolo_xywh, "adam")
    ours = from_keras_cv(yolo_xywh)
    assert isinstance(ours, vk.models.detection.VisionkitYOLOV8Detector)
    assert ours.bounding_box_format == "xywh"
    expected, converted = yolo_xywh(images, training=False), ours(images, training=False)
    for key in ("boxes", "classes"):
        np.testing.assert_array_equal(np.asarray(converted[key]), np.asarray(expected[key]))
    compile_detector(ours, "adam")  # visionkit's class trains on {"boxes", "labels"}
    assert from_keras_cv(ours) is ours


def test_a_detector_states_its_task_to_the_exporters(yolo_xywh, tmp_path):
    built = vk.models.build("yolov8", input_shape=SHAPE, num_classes=2)
    for model in (built, yolo_xywh):
        spec = _export_spec(model, None, None, ["a", "b"])
        assert spec.task.name == "detection" and spec.image_size == SHAPE[:2]
    # What is still missing is named, with the count the model needs; nothing is written.
    with pytest.raises(ValueError, match=r"class names of the model 'yolov8'.*: 2 names"):
        vk.export.onnx(built, tmp_path / "onnx")
    with pytest.raises(ValueError, match=r"has 2 classes .* 3 class names"):
        vk.export.litert(built, tmp_path / "litert", class_names=["a", "b", "c"])
    # A one-class detector given two names is not a binary classifier: no multilabel hint.
    one_class = vk.models.build("yolov8", input_shape=SHAPE, num_classes=1)
    with pytest.raises(ValueError, match=r"has 1 classes .* 2 class names") as refused:
        vk.export.litert(one_class, tmp_path / "litert", class_names=["a", "b"])
    assert "multilabel" not in str(refused.value)
    with pytest.raises(ValueError, match=r"task='classification' contradicts .*'detection'"):
        vk.export.saved_model(built, tmp_path / "saved", task="classification",
                              class_names=["a", "b"])
    data = vk.data.from_arrays(np.zeros((4, 64, 64, 3), np.uint8), [0, 1, 0, 1],
                               class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"a detection model.*'classification'"):
        vk.export.onnx(built, tmp_path / "onnx", data=data)
    assert not any(path.is_dir() and any(path.iterdir()) for path in tmp_path.iterdir())


def test_a_keras_cv_detector_that_does_not_rescale_pixels_is_said_on_export():
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=[8, 8, 8, 8], stackwise_depth=[1, 1, 1, 1],
        include_rescaling=False, input_shape=SHAPE)
    model = keras_cv.models.YOLOV8Detector(num_classes=2, bounding_box_format="xyxy",
                                           backbone=backbone, fpn_depth=1)
    with pytest.warns(UserWarning, match=r"include_rescaling=False.*raw 0\.\.255 pixels"):
        spec = _export_spec(model, None, None, ["a", "b"])
    assert spec.task.name == "detection"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # visionkit's own detectors rescale: nothing said
        _export_spec(vk.models.build("yolov8", input_shape=SHAPE, num_classes=2), None,
                     None, ["a", "b"])


def test_a_model_that_does_not_state_its_task_lists_the_tasks(tmp_path):
    model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
                            filters=(4,))
    with pytest.raises(ValueError, match=r"'simple_cnn'.*output shape \(None, 2\).*"
                                         r"task=<one of \['classification', 'detection'"):
        vk.export.onnx(model, tmp_path, class_names=["a", "b"])


@pytest.mark.slow  # one YOLOv8 ONNX conversion: ~40 s on 2 cores
def test_a_keras_cv_yolo_v8_exports_to_onnx_without_task_and_serves_xyxy(
        yolo_xywh, images, tmp_path):
    path = vk.export.onnx(yolo_xywh, tmp_path, class_names=["a", "b"])
    predictor = vk.export.load(path)
    assert predictor.task == "detection"
    served = predictor(images.astype(np.uint8))
    ours = detect(yolo_xywh, images)
    np.testing.assert_array_equal(served["num_detections"], ours["num_detections"])
    np.testing.assert_allclose(served["boxes"], ours["boxes"], atol=1e-3)
