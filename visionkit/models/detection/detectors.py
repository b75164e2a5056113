"""YOLOv8 and RetinaNet detectors on any registry backbone (keras-cv's heads).

keras-cv's `YOLOV8Detector` and `RetinaNet` provide the heads, the label encoders, the
losses and the non-maximum suppression; visionkit keeps every keras-cv import inside
`visionkit.models.detection`, so moving to other heads later touches this package only.

The subclasses here change one thing: they read targets in the batch vocabulary of
DESIGN.md, `{"boxes": xyxy pixels, "labels": class ids}` padded with -1, and hand
keras-cv the `"classes"` key it expects (the conversion "at the model's edge").

References:
    - Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR
      2016; Jocher et al., Ultralytics YOLOv8 (2023): anchor-free, decoupled head,
      task-aligned assignment.
    - Lin et al., "Focal Loss for Dense Object Detection" (RetinaNet), ICCV 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import keras_cv

from visionkit import vocabulary
from visionkit.models.backbones.weights import (
    check_weights,
    describe_weights_mismatch,
    is_pretrained,
)
from visionkit.models.detection.pyramid_backbone import PyramidBackbone
from visionkit.models.pretrained import fetch, find_pretrained
from visionkit.models.registry import register

__all__ = ["YOLO_V8_SIZES", "VisionkitRetinaNet", "VisionkitYOLOV8Detector", "retinanet",
           "yolov8", "detection_backbone", "BOX_FORMAT", "is_retinanet", "is_yolo_v8"]

# Boxes are xyxy pixels everywhere in visionkit (DESIGN.md, principle 2).
BOX_FORMAT = vocabulary.BOX_FORMAT

# keras-cv's YOLOv8 backbone sizes: (stackwise_channels, stackwise_depth). Their parameter
# counts equal those keras-cv publishes for its presets (1,277,680 for "xs" ...
# 30,972,080 for "xl"; checked by the tests), but nothing is downloaded.
YOLO_V8_SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "yolo_v8_xs": ((32, 64, 128, 256), (1, 2, 2, 1)),
    "yolo_v8_s": ((64, 128, 256, 512), (1, 2, 2, 1)),
    "yolo_v8_m": ((96, 192, 384, 576), (2, 4, 4, 2)),
    "yolo_v8_l": ((128, 256, 512, 512), (3, 6, 6, 3)),
    "yolo_v8_xl": ((160, 320, 640, 640), (3, 6, 6, 3)),
}

# Detections kept by default: scores below this are dropped before NMS. Low, so that
# COCO mAP sees the whole precision-recall curve; raise it for serving.
DEFAULT_CONFIDENCE_THRESHOLD = 0.05
DEFAULT_IOU_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100
# RetinaNet's anchors (its paper, section 4): sizes 32..512 on levels P3..P7, three
# scales per octave, three aspect ratios.
DEFAULT_ANCHOR_SIZES = (32.0, 64.0, 128.0, 256.0, 512.0)
DEFAULT_ANCHOR_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
DEFAULT_ANCHOR_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def _keras_cv_targets(y: Any) -> Any:
    """`{"boxes", "labels"}` (Keras 3 vocabulary) -> `{"boxes", "classes"}` (keras-cv)."""
    if isinstance(y, dict) and "labels" in y and "classes" not in y:
        return {"boxes": keras.ops.cast(y["boxes"], "float32"),
                "classes": keras.ops.cast(y["labels"], "float32")}
    return y


@keras.saving.register_keras_serializable(package="visionkit")
class VisionkitYOLOV8Detector(keras_cv.models.YOLOV8Detector):
    """keras-cv's YOLOV8Detector reading `{"boxes", "labels"}` targets."""

    def compute_loss(self, x, y, y_pred, sample_weight=None, **kwargs):
        return super().compute_loss(x, _keras_cv_targets(y), y_pred,
                                     sample_weight=sample_weight, **kwargs)


@keras.saving.register_keras_serializable(package="visionkit")
class VisionkitRetinaNet(keras_cv.models.RetinaNet):
    """keras-cv's RetinaNet reading `{"boxes", "labels"}` targets."""

    def compute_loss(self, x, y, y_pred, sample_weight=None, **kwargs):
        return super().compute_loss(x, _keras_cv_targets(y), y_pred, sample_weight, **kwargs)


def is_yolo_v8(model: Any) -> bool:
    """Whether `model` is a YOLOv8 detector: visionkit's or one built with keras-cv's
    `YOLOV8Detector` directly (same head, layers, decoding and NMS)."""
    return isinstance(model, keras_cv.models.YOLOV8Detector)


def is_retinanet(model: Any) -> bool:
    """Whether `model` is a RetinaNet: visionkit's or keras-cv's `RetinaNet` itself."""
    return isinstance(model, keras_cv.models.RetinaNet)


def _yolo_v8_weights(backbone: keras.Model, name: str, weights: Any,
                     input_shape: tuple) -> None:
    """Loads "coco" (keras-cv's published file) or a local file into a YOLOv8 backbone."""
    path = check_weights(weights, allow_legacy=True, argument="backbone_weights",
                         allow_pretrained=True)
    if path is None:
        return
    if is_pretrained(path):
        if path != "coco":
            raise ValueError(f"keras-cv publishes COCO weights for the YOLOv8 backbones, not "
                             f"{path!r}; pass backbone_weights='coco'. Received "
                             f"backbone_weights={weights!r}.")
        path = fetch(find_pretrained(name, "coco", input_shape=tuple(input_shape)))
    try:
        backbone.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ValueError(describe_weights_mismatch(path, f"backbone {name!r}", error)) from error


def detection_backbone(name: str, input_shape: tuple[int, int, int],
                       options: dict[str, Any] | None = None, weights: Any = None
                       ) -> keras.Model:
    """A backbone exposing P3..P5 by name: keras-cv's YOLOv8 by size, or a registry one.

    Args:
        name: "yolo_v8_xs", "yolo_v8_s", "yolo_v8_m", "yolo_v8_l", "yolo_v8_xl", or a
            name from `vk.models.available_backbones()`.
        input_shape: `(height, width, 3)` of raw 0..255 images.
        options: options of a registry backbone (e.g. `width_multiplier`).
        weights: None; "coco" for a YOLOv8 size (keras-cv's COCO-pretrained backbone);
            "imagenet" for a keras.applications backbone; or a local weights file.
            Defaults to None.

    Returns:
        A keras-cv `Backbone` with `pyramid_level_inputs`.

    Raises:
        ValueError: for an unknown name (from the backbone registry, with close matches),
            options given to a YOLOv8 backbone, or weights that do not apply or fit.
        WeightsUnavailableError: when pretrained weights are neither cached nor fetchable.
    """
    if name in YOLO_V8_SIZES:
        if options:
            raise ValueError(f"Backbone {name!r} takes no options (its size is in its name); "
                             f"received options={options!r}.")
        channels, depth = YOLO_V8_SIZES[name]
        backbone = keras_cv.models.YOLOV8Backbone(
            stackwise_channels=list(channels), stackwise_depth=list(depth),
            include_rescaling=True, activation="swish", input_shape=tuple(input_shape))
        _yolo_v8_weights(backbone, name, weights, input_shape)
        return backbone
    return PyramidBackbone(name, tuple(input_shape), options=options, weights=weights)


def _check_thresholds(confidence_threshold: float, iou_threshold: float,
                      max_detections: int) -> None:
    if not 0.0 <= float(confidence_threshold) < 1.0:
        raise ValueError("Expected confidence_threshold in [0, 1); received "
                         f"confidence_threshold={confidence_threshold!r}.")
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(f"Expected iou_threshold in (0, 1]; received "
                         f"iou_threshold={iou_threshold!r}.")
    if int(max_detections) < 1:
        raise ValueError(f"Expected max_detections >= 1; received "
                         f"max_detections={max_detections!r}.")


def _check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    height, width, channels = (int(v) for v in input_shape)
    if channels != 3 or height % 32 or width % 32:
        raise ValueError("Expected a detector input_shape (height, width, 3) with height and "
                         "width multiples of 32 (the head's coarsest stride); received "
                         f"input_shape={tuple(input_shape)!r}.")
    return height, width, channels


@register("yolov8", task="detection")
def yolov8(input_shape: tuple[int, int, int], num_classes: int,
           backbone: str = "yolo_v8_xs", backbone_options: dict[str, Any] | None = None,
           fpn_depth: int = 1, confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
           iou_threshold: float = DEFAULT_IOU_THRESHOLD,
           max_detections: int = DEFAULT_MAX_DETECTIONS, name: str = "yolov8",
           backbone_weights: Any = None) -> keras.Model:
    """YOLOv8 anchor-free detector on a backbone named from the registry.

    Reference:
        Jocher et al., Ultralytics YOLOv8 (2023); keras-cv's `YOLOV8Detector`.

    Args:
        input_shape: `(height, width, 3)`, multiples of 32.
        num_classes: number of object classes.
        backbone: a YOLOv8 size ("yolo_v8_xs" ... "yolo_v8_xl") or a registry backbone
            name. Defaults to "yolo_v8_xs".
        backbone_options: options of a registry backbone. Defaults to None.
        fpn_depth: C2f blocks per path-aggregation FPN stage. Defaults to 1.
        confidence_threshold: scores below it are dropped before NMS. Defaults to 0.05.
        iou_threshold: NMS overlap threshold. Defaults to 0.5.
        max_detections: detections kept per image. Defaults to 100.
        name: model name. Defaults to "yolov8".
        backbone_weights: None; "coco" for a YOLOv8 size (keras-cv's COCO-pretrained
            backbone, fetched once into Keras's cache); "imagenet" for a
            keras.applications backbone; or a local file. Defaults to None.

    Input shape:
        `[B, H, W, 3]` raw pixels 0..255.

    Output shape:
        Raw head outputs `{"boxes": [B, A, 64], "classes": [B, A, num_classes]}` over the
        `A` anchor points; `visionkit.models.detection.decode` turns them into boxes.

    Returns:
        A `VisionkitYOLOV8Detector`.

    Example:

    >>> import numpy as np
    >>> model = yolov8((64, 64, 3), num_classes=2)
    >>> {k: tuple(v.shape) for k, v in model(np.zeros((1, 64, 64, 3))).items()}
    {'boxes': (1, 84, 64), 'classes': (1, 84, 2)}
    """
    _check_input_shape(input_shape)
    _check_thresholds(confidence_threshold, iou_threshold, max_detections)
    decoder = keras_cv.layers.NonMaxSuppression(
        bounding_box_format=BOX_FORMAT, from_logits=False,
        confidence_threshold=float(confidence_threshold), iou_threshold=float(iou_threshold),
        max_detections=int(max_detections))
    return VisionkitYOLOV8Detector(
        backbone=detection_backbone(backbone, input_shape, backbone_options, backbone_weights),
        num_classes=int(num_classes), bounding_box_format=BOX_FORMAT,
        fpn_depth=int(fpn_depth), prediction_decoder=decoder, name=name)


@register("retinanet", task="detection")
def retinanet(input_shape: tuple[int, int, int], num_classes: int,
              backbone: str = "resnet18", backbone_options: dict[str, Any] | None = None,
              anchor_sizes: Sequence[float] = DEFAULT_ANCHOR_SIZES,
              anchor_scales: Sequence[float] = DEFAULT_ANCHOR_SCALES,
              anchor_aspect_ratios: Sequence[float] = DEFAULT_ANCHOR_ASPECT_RATIOS,
              confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
              iou_threshold: float = DEFAULT_IOU_THRESHOLD,
              max_detections: int = DEFAULT_MAX_DETECTIONS,
              name: str = "retinanet", backbone_weights: Any = None) -> keras.Model:
    """RetinaNet (anchors on P3..P7, focal loss) on a backbone named from the registry.

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; keras-cv's
        `RetinaNet`.

    Args:
        input_shape: `(height, width, 3)`, multiples of 32.
        num_classes: number of object classes.
        backbone: a registry backbone name or a YOLOv8 size. Defaults to "resnet18".
        backbone_options: options of a registry backbone. Defaults to None.
        anchor_sizes: base anchor size (pixels) on P3..P7, five values. Defaults to
            (32, 64, 128, 256, 512); halve them for small images.
        anchor_scales: scales per level. Defaults to (1, 2^(1/3), 2^(2/3)).
        anchor_aspect_ratios: width/height ratios. Defaults to (0.5, 1, 2).
        confidence_threshold, iou_threshold, max_detections: as for `yolov8`.
        name: model name. Defaults to "retinanet".
        backbone_weights: as for `yolov8`. Defaults to None.

    Returns:
        A `VisionkitRetinaNet` whose raw outputs are `{"box", "classification"}`.

    Example:

    >>> import numpy as np
    >>> model = retinanet((64, 64, 3), num_classes=2,
    ...                   backbone_options={"width_multiplier": 0.25})
    >>> sorted(model(np.zeros((1, 64, 64, 3))))
    ['box', 'classification']
    """
    _check_input_shape(input_shape)
    _check_thresholds(confidence_threshold, iou_threshold, max_detections)
    sizes = [float(s) for s in anchor_sizes]
    if len(sizes) != 5 or min(sizes) <= 0:
        raise ValueError("Expected five positive anchor_sizes (levels P3..P7); received "
                         f"anchor_sizes={tuple(anchor_sizes)!r}.")
    anchors = keras_cv.layers.AnchorGenerator(
        bounding_box_format=BOX_FORMAT, sizes=sizes,
        aspect_ratios=[float(r) for r in anchor_aspect_ratios],
        scales=[float(s) for s in anchor_scales], strides=[2 ** i for i in range(3, 8)],
        clip_boxes=True)
    decoder = keras_cv.layers.MultiClassNonMaxSuppression(
        bounding_box_format=BOX_FORMAT, from_logits=True,
        confidence_threshold=float(confidence_threshold), iou_threshold=float(iou_threshold),
        max_detections=int(max_detections), max_detections_per_class=int(max_detections))
    num_anchors = len(list(anchor_aspect_ratios)) * len(list(anchor_scales))
    prior = keras.initializers.Constant(-float(math.log((1 - 0.01) / 0.01)))
    from keras_cv.src.models.object_detection.retinanet.prediction_head import PredictionHead

    return VisionkitRetinaNet(
        backbone=detection_backbone(backbone, input_shape, backbone_options, backbone_weights),
        num_classes=int(num_classes), bounding_box_format=BOX_FORMAT,
        anchor_generator=anchors, prediction_decoder=decoder,
        classification_head=PredictionHead(output_filters=num_anchors * int(num_classes),
                                           bias_initializer=prior),
        box_head=PredictionHead(output_filters=num_anchors * 4,
                                bias_initializer=keras.initializers.Zeros()),
        name=name)
