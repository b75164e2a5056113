"""The graph LiteRT and ONNX exports are converted from: uint8 pixels in, served outputs out.

One `tf.function` per model, frozen (variables folded into constants, so no seed or
other state variable survives conversion), taking uint8 images `[B, H, W, 3]` at the
model's input size and returning what the SavedModel's `serving_default` returns for
images of that size:

- classification: `probabilities` float32 `[B, C]`, `class_id` int32 `[B]`;
- segmentation: `mask` int32 `[B, H, W]`, `probabilities` float32 `[B, H, W, C]`,
  `image_size` int32 `[B, 2]` (at
  the model's size no resize runs, so the SavedModel's per-image `tf.map_fn` resize, a
  loop LiteRT's builtins cannot express, is left out; the values are the same);
- detection: `boxes` float32 `[B, K, 4]` (xyxy pixels), `scores` `[B, K]`, `classes`
  int32 `[B, K]`, `num_detections` int32 `[B]`, -1 padded. The detector's own box
  decoding runs, followed by non-maximum suppression through TensorFlow's padded
  `NonMaxSuppressionV4` with its count of kept boxes (LiteRT builtin
  `NON_MAX_SUPPRESSION_V4`, ONNX `NonMaxSuppression`) instead of keras-cv's padded NMS, whose bit-mask loop needs
  TensorFlow select ops that the LiteRT interpreter package cannot run (measured: a
  64-px YOLOv8 with keras-cv's NMS converts only with SELECT_TF_OPS, in 102 s, and
  `ai_edge_litert` then fails on `FlexBitwiseAnd`). Per-class NMS (RetinaNet) uses the
  class-offset form of the same op. Detectors take one image per call (`B` = 1). A
  YOLOv8's raw predictions are taken from its head's per-level box and class tensors,
  joined boxes with boxes and scores with scores (`visionkit.models.detection.
  head_predictions`): keras-cv joins them in one tensor first, whose single int8 scale
  collapses the 0..1 scores. The values are the model's own outputs.

Resizing is not inside these graphs: the default `Preprocessing` resizes with
antialiasing (`ScaleAndTranslate`), which neither LiteRT's builtins nor tf2onnx express,
so a client resizes to `input_size` with the spec recorded beside the model (as
`vk.export.load` does) and sends uint8 pixels at the model's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from visionkit.models.detection import (
    boxes_from_xyxy,
    boxes_to_xyxy,
    decode,
    head_predictions,
    is_detector,
)
from visionkit.vocabulary import Task

__all__ = ["portable_function", "portable_detections", "batch_size_for", "INPUT_NAME"]

INPUT_NAME = "images"


def batch_size_for(task: Task) -> int | None:
    """Images per call of the portable graph: 1 for detectors (NMS per image), else any."""
    return task.portable_batch_size


def portable_function(model: keras.Model, task: Task, image_size: Sequence[int]):
    """A frozen concrete function: uint8 `[B, H, W, 3]` at the model's size -> outputs.

    Args:
        model: the Keras model (raw 0..255 pixels in, as every visionkit model).
        task: its task; chooses the post-processing.
        image_size: `(height, width)` of the model's input.

    Returns:
        A `tf.function` with one input signature (`images`) that captures no variables.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    height, width = (int(side) for side in image_size)
    spec = tf.TensorSpec([batch_size_for(task), height, width, 3], tf.uint8, name=INPUT_NAME)

    # A detector's raw predictions come with box logits and class scores in separate
    # tensors (`head_predictions`: in int8 a shared concatenation collapses the scores).
    forward = head_predictions(model) if is_detector(model) else (
        lambda pixels: model(pixels, training=False))

    def serve(images):
        pixels = tf.cast(images, tf.float32)
        outputs = forward(pixels)
        outputs = tf.nest.map_structure(
            lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, outputs)
        return task.portable_outputs(model, outputs, (height, width))

    function = tf.function(serve, input_signature=[spec], autograph=False)
    concrete = function.get_concrete_function()
    # The frozen function returns the flat outputs, in tf.nest order (sorted keys).
    output_names = sorted(concrete.structured_outputs)
    frozen = convert_variables_to_constants_v2(concrete)

    def call_frozen(images):
        return dict(zip(output_names, tf.nest.flatten(frozen(images))))

    return tf.function(call_frozen, input_signature=[spec], autograph=False)


class _BuiltinNMS:
    """Stands in for keras-cv's NMS layer in `decode_predictions`, with builtin ops.

    Same inputs (`box_prediction` `[1, A, 4]` in the layer's `bounding_box_format`,
    `class_prediction` `[1, A, C]`) and output keys as keras-cv's `NonMaxSuppression`
    (class-agnostic on the best class's score) or `MultiClassNonMaxSuppression` (per
    class); boxes come back in that format (xyxy for visionkit's detectors, anything
    keras-cv names for a detector built with keras-cv directly).
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.per_class = type(layer).__name__ == "MultiClassNonMaxSuppression"

    def __getattr__(self, name):  # bounding_box_format and the thresholds
        return getattr(self.layer, name)

    def __call__(self, box_prediction, class_prediction, images=None, image_shape=None):
        layer = self.layer
        scores = tf.cast(class_prediction[0], tf.float32)
        if layer.from_logits:
            scores = tf.sigmoid(scores)
        shape = image_shape if image_shape is not None else (
            None if images is None else tuple(images.shape[1:]))
        box_format = layer.bounding_box_format
        boxes = boxes_to_xyxy(tf.cast(box_prediction[0], tf.float32), box_format, shape)
        num_classes = tf.shape(scores)[-1]
        if self.per_class:
            # Each class's boxes moved to their own region, so one class-agnostic NMS is
            # per-class NMS (every class keeps up to max_detections, then the best
            # max_detections overall, as combined_non_max_suppression does).
            classes = tf.tile(tf.range(num_classes)[None], [tf.shape(scores)[0], 1])
            classes = tf.reshape(classes, [-1])
            boxes = tf.reshape(tf.tile(boxes[:, None, :], [1, num_classes, 1]), [-1, 4])
            scores = tf.reshape(scores, [-1])
            offset = (tf.reduce_max(tf.abs(boxes)) + 1.0) * tf.cast(classes, tf.float32)
            nms_boxes = boxes + offset[:, None]
        else:
            classes = tf.argmax(scores, axis=-1, output_type=tf.int32)
            scores = tf.reduce_max(scores, axis=-1)
            nms_boxes = boxes
        yxyx = tf.gather(nms_boxes, [1, 0, 3, 2], axis=-1)
        limit = int(layer.max_detections)
        # The padded form with its explicit count: converted without padding, LiteRT's
        # NMS returns max_output_size indices and the count is lost (measured: 300 kept
        # of 300 identical boxes, where TensorFlow keeps 1).
        keep, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=yxyx, scores=scores, max_output_size=limit,
            iou_threshold=float(layer.iou_threshold),
            score_threshold=float(layer.confidence_threshold), pad_to_max_output_size=True)
        valid = tf.range(limit) < count
        return {
            "boxes": tf.where(valid[:, None], boxes_from_xyxy(tf.gather(boxes, keep),
                                                              box_format, shape), -1.0)[None],
            "confidence": tf.where(valid, tf.gather(scores, keep), -1.0)[None],
            "classes": tf.where(valid, tf.gather(classes, keep), -1)[None],
            "num_detections": count[None],
        }


def portable_detections(model: keras.Model, outputs) -> dict[str, tf.Tensor]:
    """A keras-cv detector's served detections (`boxes`, `scores`, `classes`,
    `num_detections`) from its raw `outputs`, with NMS in builtin ops a portable format
    converts (the detection task's `portable_outputs`)."""
    original = model.prediction_decoder
    # keras-cv's decode_predictions calls `self.prediction_decoder(boxes, scores)`;
    # swapped only while this graph is traced.
    object.__setattr__(model, "_prediction_decoder", _BuiltinNMS(original))
    try:
        served = decode(model, outputs)
    finally:
        object.__setattr__(model, "_prediction_decoder", original)
    return {"boxes": served["boxes"], "scores": served["scores"],
            "classes": served["classes"], "num_detections": served["num_detections"]}
