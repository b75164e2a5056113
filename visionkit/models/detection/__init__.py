"""Detection models: YOLOv8 and RetinaNet heads on any backbone, decoding and NMS.

Every keras-cv import of visionkit lives in this package, so a later move to other heads
touches one place. The rest of visionkit asks three functions: `is_detector`,
`compile_detector` and `decode` (raw head outputs -> boxes after non-maximum suppression).

A `keras_cv.models.YOLOV8Detector` or `keras_cv.models.RetinaNet` built directly with
keras-cv is a detector too: decoding, NMS, `head_predictions`, explanations and every
export serve it as they serve visionkit's own (its boxes turned to xyxy pixels whatever
its `bounding_box_format`). Training alone needs visionkit's subclass, which reads the
`{"boxes", "labels"}` targets of visionkit's batches: `from_keras_cv(model)` makes it,
with the same configuration and weights.

Example:

>>> import numpy as np
>>> from visionkit.models.detection import yolov8, detect
>>> model = yolov8((64, 64, 3), num_classes=2)
>>> out = detect(model, np.zeros((1, 64, 64, 3), np.float32))
>>> sorted(out), out["boxes"].shape
(['boxes', 'classes', 'num_detections', 'scores'], (1, 100, 4))
"""

from __future__ import annotations

import re
import weakref
from typing import Any

import keras
import keras_cv
import numpy as np
import tensorflow as tf

from visionkit.models.detection.anchors import anchor_centres
from visionkit.models.detection.detectors import (
    BOX_FORMAT,
    YOLO_V8_SIZES,
    VisionkitRetinaNet,
    VisionkitYOLOV8Detector,
    detection_backbone,
    is_retinanet,
    is_yolo_v8,
    retinanet,
    yolov8,
)
from visionkit.models.detection.pyramid_backbone import PyramidBackbone

__all__ = ["BOX_FORMAT", "PyramidBackbone", "VisionkitRetinaNet", "VisionkitYOLOV8Detector",
           "YOLO_V8_SIZES", "anchor_centres", "boxes_from_xyxy", "boxes_to_xyxy", "compile_detector", "decode", "detect",
           "detection_backbone", "forward_function", "from_keras_cv", "head_predictions",
           "is_detector", "is_retinanet", "is_yolo_v8", "retinanet", "rescales_raw_pixels",
           "yolov8"]

# Default losses of each head, as keras-cv names them.
_DEFAULT_LOSSES = {
    VisionkitYOLOV8Detector: {"box_loss": "ciou", "classification_loss": "binary_crossentropy"},
    VisionkitRetinaNet: {"box_loss": "smoothl1", "classification_loss": "focal"},
}


def is_detector(model: Any) -> bool:
    """Whether `model` is a YOLOv8 or RetinaNet detector: visionkit's (`vk.models.build`)
    or keras-cv's `YOLOV8Detector` / `RetinaNet` (or a subclass) built directly."""
    return is_yolo_v8(model) or is_retinanet(model)


def _check_detector(model: Any) -> None:
    if not is_detector(model):
        raise TypeError("Expected a detector: vk.models.build('yolov8' or 'retinanet', ...), "
                        "or keras-cv's YOLOV8Detector or RetinaNet; received "
                        f"{type(model).__name__}.")


def from_keras_cv(model: keras.Model) -> keras.Model:
    """visionkit's detector class for a keras-cv detector: same configuration, weights copied.

    keras-cv's `YOLOV8Detector` and `RetinaNet` read training targets under `"classes"`;
    visionkit's batches say `"labels"`, which its subclasses (`VisionkitYOLOV8Detector`,
    `VisionkitRetinaNet`) hand over at the model's edge. Inference and export take either
    class; `vk.train.fit` needs visionkit's.

    Args:
        model: a built `keras_cv.models.YOLOV8Detector` or `keras_cv.models.RetinaNet`.

    Returns:
        A new `VisionkitYOLOV8Detector` / `VisionkitRetinaNet` with `model`'s
        configuration and a copy of its weights; `model` itself if it already is one.

    Raises:
        TypeError: if `model` is neither.

    Example:

    >>> import keras_cv, numpy as np
    >>> backbone = keras_cv.models.YOLOV8Backbone(
    ...     stackwise_channels=[8, 8, 8, 8], stackwise_depth=[1, 1, 1, 1],
    ...     include_rescaling=True, input_shape=(64, 64, 3))
    >>> theirs = keras_cv.models.YOLOV8Detector(num_classes=2, bounding_box_format="xyxy",
    ...                                         backbone=backbone, fpn_depth=1)
    >>> ours = from_keras_cv(theirs)
    >>> type(ours).__name__, len(ours.weights) == len(theirs.weights)
    ('VisionkitYOLOV8Detector', True)
    """
    _check_detector(model)
    target = VisionkitYOLOV8Detector if is_yolo_v8(model) else VisionkitRetinaNet
    if isinstance(model, target):
        return model
    converted = target.from_config(model.get_config())
    converted.build(model.input_shape)
    converted.set_weights(model.get_weights())
    return converted


def rescales_raw_pixels(model: keras.Model) -> bool | None:
    """Whether a detector's backbone divides raw 0..255 pixels by 255 itself.

    keras-cv backbones record it as `include_rescaling`; visionkit's are always built
    with it (every visionkit model takes raw pixels). A keras-cv detector built with
    `include_rescaling=False` was trained on pixels scaled outside the model, which
    visionkit's pipelines and exports do not do.

    Returns:
        True or False as the backbone says, None when it does not say.
    """
    value = getattr(getattr(model, "backbone", None), "include_rescaling", None)
    return None if value is None else bool(value)


def boxes_to_xyxy(boxes: tf.Tensor, box_format: str, image_shape: Any) -> tf.Tensor:
    """`boxes` in a keras-cv `box_format` as xyxy pixels (graph code; keras-cv's
    `convert_format`, `image_shape` `(height, width, 3)` for relative formats)."""
    if box_format == BOX_FORMAT:
        return boxes
    return keras_cv.bounding_box.convert_format(boxes, source=box_format, target=BOX_FORMAT,
                                                image_shape=image_shape)


def boxes_from_xyxy(boxes: tf.Tensor, box_format: str, image_shape: Any) -> tf.Tensor:
    """xyxy pixel `boxes` in a keras-cv `box_format` (the inverse of `boxes_to_xyxy`)."""
    if box_format == BOX_FORMAT:
        return boxes
    return keras_cv.bounding_box.convert_format(boxes, source=BOX_FORMAT, target=box_format,
                                                image_shape=image_shape)


def compile_detector(model: keras.Model, optimizer: Any, jit_compile: bool = False,
                     box_loss: Any = None, classification_loss: Any = None) -> None:
    """Compiles a detector with its head's losses.

    Args:
        model: a visionkit detector (keras-cv's own class: convert it with `from_keras_cv`).
        optimizer: a Keras optimizer.
        jit_compile: compile the training step with XLA. Defaults to False.
        box_loss: overrides the head's box loss ("ciou" for YOLOv8, "smoothl1" for
            RetinaNet). Defaults to None.
        classification_loss: overrides the head's classification loss
            ("binary_crossentropy" for YOLOv8, "focal" for RetinaNet). Defaults to None.

    Raises:
        TypeError: if `model` is not a detector, or is keras-cv's own class (which reads
            `"classes"` targets: convert it with `from_keras_cv`).
    """
    _check_detector(model)
    if not isinstance(model, tuple(_DEFAULT_LOSSES)):
        raise TypeError(
            f"keras-cv's {type(model).__name__} reads training targets under 'classes'; "
            "visionkit's batches give 'labels'. Train visionkit's class with the same "
            "configuration and weights: model = vk.models.detection.from_keras_cv(model) "
            "(or build it with vk.models.build('yolov8' or 'retinanet', ...)).")
    losses = dict(_DEFAULT_LOSSES[VisionkitYOLOV8Detector if is_yolo_v8(model)
                                  else VisionkitRetinaNet])
    if box_loss is not None:
        losses["box_loss"] = box_loss
    if classification_loss is not None:
        losses["classification_loss"] = classification_loss
    model.compile(optimizer=optimizer, jit_compile=bool(jit_compile), **losses)


def decode(model: keras.Model, outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decodes raw head outputs into detections with non-maximum suppression (graph code).

    Args:
        model: the detector that produced `outputs`.
        outputs: its raw outputs on images of the model's input size.

    Returns:
        `boxes` float32 `[B, K, 4]` (xyxy pixels of the model's input, clipped to it),
        `scores` float32
        `[B, K]`, `classes` int32 `[B, K]`, `num_detections` int32 `[B]`; rows past
        `num_detections` are padded with -1.
    """
    _check_detector(model)
    height, width, channels = model.input_shape[1:]
    # keras-cv reads only the static shape of `images` here.
    shape_only = tf.zeros([1, height, width, channels], tf.float32)
    outputs = {key: tf.cast(value, tf.float32) for key, value in outputs.items()}
    decoded = model.decode_predictions(outputs, shape_only)
    num = tf.cast(decoded["num_detections"], tf.int32)
    valid = tf.sequence_mask(num, tf.shape(decoded["boxes"])[1])
    # keras-cv gives boxes in the model's own format (visionkit's: xyxy already).
    boxes = boxes_to_xyxy(tf.cast(decoded["boxes"], tf.float32), model.bounding_box_format,
                          (height, width, channels))
    # Boxes are clipped to the image: what lies outside it was never seen.
    limit = tf.constant([width, height, width, height], tf.float32)
    boxes = tf.clip_by_value(boxes, 0.0, limit)
    boxes = tf.where(valid[..., None], boxes, -1.0)
    return {
        "boxes": boxes,
        "scores": tf.where(valid, tf.cast(decoded["confidence"], tf.float32), -1.0),
        "classes": tf.where(valid, tf.cast(decoded["classes"], tf.int32), -1),
        "num_detections": num,
    }


def detect(model: keras.Model, images: Any, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Detections on images already at the model's input size (visionkit's own path).

    Args:
        model: a detector (`is_detector`).
        images: float32 or uint8 `[N, H, W, 3]` raw pixels at the model's input size.
        batch_size: images per forward pass. Defaults to 32.

    Returns:
        NumPy arrays as `decode` describes them, concatenated over batches.
    """
    _check_detector(model)
    forward = forward_function(model)
    images = np.asarray(images, np.float32)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), int(batch_size)):
        result = forward(tf.constant(images[start:start + int(batch_size)]))
        for key, value in result.items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


# One traced forward + decode function per detector (tracing NMS costs seconds); the
# function holds the model weakly, so the cache does not keep models alive.
_FORWARD_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_function(model: keras.Model):
    """The detector's `tf.function` from images to decoded detections (cached per model).

    Args:
        model: a detector (`is_detector`).

    Returns:
        A `tf.function` on float32 `[B, H, W, 3]` returning `decode`'s dict.
    """
    _check_detector(model)
    function = _FORWARD_FUNCTIONS.get(model)
    if function is None:
        reference = weakref.ref(model)

        @tf.function(reduce_retracing=True)
        def forward(images):
            detector = reference()
            return decode(detector, detector(images, training=False))

        function = _FORWARD_FUNCTIONS[model] = forward
    return function


# keras-cv's YOLOv8 head (`apply_yolo_v8_head`): per pyramid level i (1, 2, 3), the box
# branch ends in `<prefix>_<i>_box_3_conv` (64 DFL logits) and the class branch in
# `<prefix>_<i>_classifier` (sigmoid scores).
YOLO_V8_HEAD = "yolo_v8_head"
_HEAD_PREDICTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _yolo_v8_head_model(model: keras.Model) -> keras.Model:
    """`keras.Model(model.inputs, [box logits of each level..., class scores of each level...])`."""
    names = {layer.name for layer in model.layers}
    # Levels 1..L, L the highest level any of the two branches names: a level whose box
    # layer alone was renamed is missing, not a model with fewer levels.
    found = [int(match.group(1)) for name in names if (match := re.fullmatch(
        rf"{YOLO_V8_HEAD}_(\d+)_(?:box_3_conv|classifier)", name))]
    levels = range(1, max(found, default=1) + 1)
    wanted = [f"{YOLO_V8_HEAD}_{level}_{part}" for part in ("box_3_conv", "classifier")
              for level in levels]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(
            f"Expected the model {model.name!r} to have keras-cv's YOLOv8 head layers "
            f"{wanted} (the box and class branches of each pyramid level, kept apart for "
            f"portable exports); layer(s) {missing} not found. A portable (LiteRT, ONNX) "
            f"export needs them: export the SavedModel (vk.export.saved_model) instead.")
    tensors = [model.get_layer(name).output for name in wanted]
    # Every anchor of the model's own outputs must come from one of these levels.
    anchors = [int(np.prod(tensor.shape[1:-1])) if None not in tensor.shape[1:-1] else None
               for tensor in tensors[:len(levels)]]
    expected = {tensor.shape[1] for tensor in tf.nest.flatten(model.outputs)}
    if None not in anchors and len(expected) == 1 and None not in expected \
            and sum(anchors) != next(iter(expected)):
        raise ValueError(
            f"Expected the head layers {wanted} of the model {model.name!r} to give its "
            f"{next(iter(expected))} anchors; they give {sum(anchors)} ({anchors} per "
            f"level). A portable (LiteRT, ONNX) export needs every level's box and class "
            f"layers under keras-cv's names: export the SavedModel (vk.export.saved_model) "
            f"instead.")
    return keras.Model(model.inputs, tensors, name=f"{model.name}_head_predictions")


def head_predictions(model: keras.Model):
    """The detector's raw predictions with box logits and class scores never in one tensor.

    keras-cv's YOLOv8 head concatenates, per pyramid level, the 64 box-distribution
    logits (values in the tens) with the sigmoid class scores (0..1) into one tensor,
    then the levels, and only then splits `boxes` and `classes`. Quantized to int8, a
    concatenation has one scale for all its inputs (TensorFlow's converter gives
    CONCATENATION's operands and output the same scale), so the scores get steps of about
    0.15 and the detections collapse. Here the per-level box and class tensors are taken
    before that concatenation and joined boxes with boxes, scores with scores, in
    keras-cv's order (level by level, row-major within a level), so the result equals
    the model's own outputs bit for bit (Ultralytics' int8 exports keep boxes and scores
    apart for the same reason). Measured on a YOLOv8 trained to val mAP50 0.59 (100
    validation images, Keras 0.569 against the truth): fully int8, 0.010 with keras-cv's
    joined head, 0.047 split (the box decoding's corners-times-stride multiplication is
    then the worst int8 op, off by 113 steps); with it and 36 more of 221 tensors in
    float32 (`vk.export.litert`'s selective quantization), 0.556. RetinaNet's head never
    joins them (keras-cv concatenates its `box` and `classification` outputs
    separately): its model is called as it is. Measured on a RetinaNet (resnet18 width
    0.25, anchor sizes 16..256, 64x64 shapes, 750 training images, Adam 5e-4 for 20
    epochs, then 2.5e-4 for 25; 100 validation images): int8 LiteRT mAP50 against the
    truth 0.3939 vs Keras's 0.3942 after 20 epochs, 0.4331 vs 0.4332 after 45, so its
    scores did not collapse; against Keras's own detections 0.925 and 0.936 (many
    detections near the 0.05 confidence threshold reorder), also with 69 of 138 tensors
    in float32 (the worst int8 op: the `box` concatenation of the five levels' deltas,
    2.2-2.4 bits lost to its shared scale). Below mAP50 0.5 the parity check holds an
    int8 export to Keras's own detections (>= 0.98, `visionkit.export.parity`), so such
    a RetinaNet's int8 export is refused, saying so (its float32 LiteRT export: mAP50
    1.0 against Keras's own detections).

    Args:
        model: a detector (`is_detector`), visionkit's or keras-cv's own.

    Returns:
        A callable on float32 images `[B, H, W, 3]` (raw 0..255 pixels, the model's
        size) returning the model's raw outputs as float32 (YOLOv8: `{"boxes": [B, A,
        64], "classes": [B, A, C]}`).

    Raises:
        TypeError: if `model` is not a detector.
        ValueError: naming the missing layers, for a YOLOv8 whose head layers are not
            keras-cv's.
    """
    _check_detector(model)
    if not is_yolo_v8(model):
        return lambda images: model(images, training=False)
    head = _HEAD_PREDICTIONS.get(model)
    if head is None:
        head = _HEAD_PREDICTIONS[model] = _yolo_v8_head_model(model)
    count = len(head.outputs) // 2

    def predictions(images):
        outputs = head(images, training=False)
        joined = {}
        for key, parts in (("boxes", outputs[:count]), ("classes", outputs[count:])):
            parts = [tf.reshape(tf.cast(part, tf.float32),
                                [tf.shape(part)[0], -1, part.shape[-1]]) for part in parts]
            joined[key] = tf.concat(parts, axis=1)
        return joined

    return predictions
