"""Parity of an export with the Keras model: the table `check` prints and exports must pass.

Both sides get the same uint8 images at the model's input size. Measures, per task:

- classification: `max_abs_probabilities` (largest absolute difference of any class
  probability), `top1_agreement` (fraction of images with the same `class_id`);
- segmentation: `max_abs_probabilities`, `pixels_within_1e-2` (fraction of pixels whose
  probabilities of every class are within `PIXEL_TOLERANCE` = 1e-2 of the Keras model's),
  `mask_agreement` (fraction of pixels with the same class), `mask_miou` (mean over
  classes present on either side of the IoU between the export's mask and the Keras
  model's);
- a class the export picks that ties exactly with the Keras model's choice (the same
  reference probability: a saturated sigmoid head, equal logits) counts as agreeing,
  since argmax's tie-break differs between runtimes;
- detection: `map50` of the export's detections scored against the Keras model's own
  detections as ground truth (pycocotools through `visionkit.train.detection_metrics`),
  and `map` (IoU .50:.95) the same way;

plus `latency_ms` per image of each side. With the images' ground truth (`truth`:
the validation masks or boxes), also the task's own accuracy of both sides and its
drop: `miou` / `reference_miou` / `miou_drop` (mean IoU against the true masks over
the classes present in either) and `map50_truth`, `reference_map50_truth`,
`map50_drop` (mAP50 against the true boxes).

Thresholds (`THRESHOLDS`) depend on the quantization: float32 probabilities within
1e-4, masks equal on >= 99.9% of pixels, detections mAP50 >= 0.99 against Keras's own;
float16 probabilities within 1e-2 (a segmenter's per pixel: see below), detections
mAP50 >= 0.98 against Keras's own; dynamic-range and int8 top-1 agreement >= 98%
(classes, and pixels of masks) and the task's mIoU / mAP50 within 2 points of the
Keras (float32) model's. Without ground truth, or when the Keras model's own mIoU /
mAP50 against it is below `MIN_REFERENCE_ACCURACY` (0.5), the quantized mIoU / mAP50
bar is taken against the Keras model's own masks / detections (>= 0.98), which is
stricter: a class the Keras model paints on a few pixels weighs as much as the
background there.

float16 on a segmenter is judged per pixel, the way float32's masks are: its
probabilities within 1e-2 of the Keras model's on >= 99.9% of the pixels
(`pixels_within_1e-2`), its masks equal on >= 99% of them and its mIoU within 2 points,
instead of one maximum over every probability of every pixel, which is still measured
and printed (`max_abs_probabilities`) but not held to 1e-2: the maximum over
N x H x W x K values is the verdict of the single worst pixel (numpy's
`assert_allclose` likewise reports the share of mismatched elements). A fault of the
conversion moves every pixel (all probabilities 0.02 off: share 0); a model whose
output is not a smooth function of its weights moves some. SegNet is such a model: its
max-unpooling puts each value back where its 2x2 window's maximum was, and where two
values of a window nearly tie any rounding of the weights moves it. Measured on a
SegNet trained on the shapes (width 0.25, 4 stages, 16 epochs in batches of 8,
validation mIoU 0.757), 16 validation images (65,536 pixels): float16 LiteRT largest
difference 0.19, within 1e-2 on 99.21% of the pixels, masks equal on 99.96%, mIoU
against the truth 0.7216 vs Keras's 0.7211; Keras itself with its weights rounded to
float16 differs from Keras the same way (0.27, 99.26%, masks 99.96%; 0.02-0.04% of each
unpooling layer's switches flipped). A switch flipped at a coarse decoder stage (8x8 at
a 64x64 input) moves a block of output pixels, not one (0 to 133 of an image's 4,096
were off by more than 1e-2), so that SegNet's float16 export is refused even per pixel,
naming its unpooling layers; the bar is not lowered to the figure one model reached.
U-Net's float16 export is within 0.0085 everywhere. A classifier's output is one vector
per image: its float16 export keeps the strict maximum (measured 0.0017 on the digits
classifier), as do float32 exports of every task.

Example:

>>> import numpy as np
>>> reference = {"probabilities": np.array([[0.2, 0.8]]), "class_id": np.array([1])}
>>> served = {"probabilities": np.array([[0.2, 0.8]]), "class_id": np.array([1])}
>>> measure("classification", reference, served)["top1_agreement"]
1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from visionkit.train.detection_metrics import coco_map
from visionkit.vocabulary import Task, get_task

__all__ = ["measure", "failures", "THRESHOLDS", "format_table", "class_parity", "mask_parity",
           "detection_parity", "PIXEL_TOLERANCE", "PIXELS_WITHIN"]

# The float16 bar on probabilities (the "float16 within 1e-2"), applied per pixel
# to a segmenter: `PIXELS_WITHIN` names the share of pixels within it.
PIXEL_TOLERANCE = 1e-2
PIXELS_WITHIN = "pixels_within_1e-2"

# metric -> ("max" | "min", bound) per quantization (None: float32).
THRESHOLDS: dict[str | None, dict[str, tuple[str, float]]] = {
    None: {"max_abs_probabilities": ("max", 1e-4), "top1_agreement": ("min", 1.0),
           "mask_agreement": ("min", 0.999), "map50": ("min", 0.99)},
    "float16": {"max_abs_probabilities": ("max", PIXEL_TOLERANCE),
                "top1_agreement": ("min", 0.98), PIXELS_WITHIN: ("min", 0.999),
                "mask_agreement": ("min", 0.99), "miou_drop": ("max", 0.02),
                "mask_miou": ("min", 0.98), "map50": ("min", 0.98)},
    "dynamic": {"top1_agreement": ("min", 0.98), "mask_agreement": ("min", 0.98),
                "miou_drop": ("max", 0.02), "map50_drop": ("max", 0.02),
                "mask_miou": ("min", 0.98), "map50": ("min", 0.98)},
    "int8": {"top1_agreement": ("min", 0.98), "mask_agreement": ("min", 0.98),
             "miou_drop": ("max", 0.02), "map50_drop": ("max", 0.02),
             "mask_miou": ("min", 0.98), "map50": ("min", 0.98)},
}
# A bar against the Keras model's own outputs that the same bar against ground truth
# replaces when the truth is known (quantized exports: "within 2 points of float32"),
# provided the Keras model's own accuracy there is at least MIN_REFERENCE_ACCURACY:
# "within 2 points" of a model that is right nowhere proves nothing (measured: a
# 2-epoch YOLOv8 at mAP50 0.0002 against the truth, its int8 export 0.0004, while the
# int8 detections matched Keras's at mAP50 0.45 only).
_REPLACED_BY_TRUTH = {"mask_miou": ("miou_drop", "reference_miou"),
                      "map50": ("map50_drop", "reference_map50_truth")}
MIN_REFERENCE_ACCURACY = 0.5
# A bar a per-pixel measure replaces where the quantization gives that measure a bar
# (float16 segmenters: the share of pixels within 1e-2 instead of the largest difference
# over every pixel; see the module docstring).
_REPLACED_PER_PIXEL = {"max_abs_probabilities": PIXELS_WITHIN}


def measure(task: str | Task, reference: Mapping[str, np.ndarray],
            served: Mapping[str, np.ndarray], truth: Any = None) -> dict[str, float]:
    """Parity metrics of `served` outputs against `reference` outputs (same images).

    Args:
        task: the task or its name ("classification", "segmentation", "detection"); the
            task's `parity` chooses the metrics.
        reference: the Keras model's (or SavedModel's) served outputs, batch-first.
        served: the export's outputs on the same images.
        truth: the images' ground truth, or None: segmentation int `[N, H, W]` class
            masks; detection one dict per image with `boxes` `[k, 4]` (xyxy pixels)
            and `labels` `[k]` (-1 rows are padding). Defaults to None.

    Returns:
        The task's metrics (see the module docstring) as floats.

    Raises:
        ValueError: if an output is missing or its shape differs, or for an unknown task.
    """
    for key in reference:
        if key not in served:
            raise ValueError(f"The export returns {sorted(served)}; expected {sorted(reference)}.")
        if np.shape(served[key]) != np.shape(reference[key]):
            raise ValueError(f"Output {key!r} has shape {np.shape(served[key])} in the export "
                             f"but {np.shape(reference[key])} from the reference.")
    result = get_task(task).parity(reference, served)
    if truth is not None:
        result.update(truth_parity(reference, served, truth))
    return result


def truth_parity(reference: Mapping[str, np.ndarray], served: Mapping[str, np.ndarray],
                 truth: Any) -> dict[str, float]:
    """Accuracy of the served and the reference outputs against the ground truth, and its
    drop: `miou`, `reference_miou`, `miou_drop` for `mask` outputs; `map50_truth`,
    `reference_map50_truth`, `map50_drop` for `boxes` outputs; nothing otherwise."""
    if "boxes" in reference:
        mine = _detection_map50(truth, served)
        theirs = _detection_map50(truth, reference)
        return {"map50_truth": mine, "reference_map50_truth": theirs,
                "map50_drop": theirs - mine}
    if "mask" in reference:
        theirs = np.asarray(reference["mask"])
        truth = np.asarray(truth).reshape(theirs.shape)
        mine = _mean_iou(np.asarray(served["mask"]), truth)
        reference_miou = _mean_iou(theirs, truth)
        return {"miou": mine, "reference_miou": reference_miou,
                "miou_drop": reference_miou - mine}
    return {}


def class_parity(reference: Mapping[str, np.ndarray],
                 served: Mapping[str, np.ndarray]) -> dict[str, float]:
    """`max_abs_probabilities` and `top1_agreement` of served `probabilities` `[B, K]` and
    `class_id` `[B]` (a classifier's parity)."""
    mine = _tied_to_reference(np.asarray(served["class_id"]),
                              np.asarray(reference["class_id"]), reference["probabilities"])
    return {"max_abs_probabilities": _max_abs_probabilities(reference, served),
            "top1_agreement": float(np.mean(mine == np.asarray(reference["class_id"])))}


def mask_parity(reference: Mapping[str, np.ndarray],
                served: Mapping[str, np.ndarray]) -> dict[str, float]:
    """`max_abs_probabilities`, `pixels_within_1e-2` (share of the `B x H x W` pixels
    whose `K` probabilities are all within `PIXEL_TOLERANCE`), `mask_agreement` and
    `mask_miou` of served `probabilities` `[B, H, W, K]` and `mask` `[B, H, W]` (a
    segmenter's parity)."""
    mine = _tied_to_reference(np.asarray(served["mask"]), np.asarray(reference["mask"]),
                              reference["probabilities"])
    theirs = np.asarray(reference["mask"])
    difference = np.abs(np.asarray(served["probabilities"], np.float64)
                        - reference["probabilities"])
    return {"max_abs_probabilities": float(np.max(difference)),
            PIXELS_WITHIN: float(np.mean(np.all(difference <= PIXEL_TOLERANCE, axis=-1))),
            "mask_agreement": float(np.mean(mine == theirs)),
            "mask_miou": _mean_iou(mine, theirs)}


def _max_abs_probabilities(reference: Mapping[str, np.ndarray],
                           served: Mapping[str, np.ndarray]) -> float:
    return float(np.max(np.abs(
        np.asarray(served["probabilities"], np.float64) - reference["probabilities"])))


def _tied_to_reference(served: np.ndarray, expected: np.ndarray,
                       probabilities: np.ndarray) -> np.ndarray:
    """`served` class ids, with those exactly tied with the reference's choice replaced by it.

    Where the reference gives two classes the very same probability (a saturated sigmoid
    head gives several classes 1.0, a softmax of equal logits 1/C each), argmax picks the
    first and another runtime may pick another: both answers are the reference's top-1.
    Only exact ties count; near ties stay disagreements.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.shape[:-1] != served.shape:
        return served
    picked = np.take_along_axis(probabilities, served[..., None].clip(
        0, probabilities.shape[-1] - 1).astype(np.int64), axis=-1)[..., 0]
    tied = (served >= 0) & (served < probabilities.shape[-1]) & (
        picked == probabilities.max(axis=-1))
    return np.where(tied, expected, served)


def _mean_iou(mine: np.ndarray, theirs: np.ndarray) -> float:
    ious = []
    for value in np.union1d(np.unique(mine), np.unique(theirs)):
        a, b = mine == value, theirs == value
        ious.append(np.sum(a & b) / np.sum(a | b))
    return float(np.mean(ious)) if ious else 1.0


def detection_parity(reference: Mapping[str, np.ndarray],
                     served: Mapping[str, np.ndarray]) -> dict[str, float]:
    """`map50` and `map` of served detections (`boxes`, `scores`, `classes`,
    `num_detections`) scored against the reference's as ground truth (a detector's
    parity)."""
    truths, guesses = [], []
    for index in range(len(reference["num_detections"])):
        count = int(reference["num_detections"][index])
        truths.append({"boxes": reference["boxes"][index][:count],
                       "labels": reference["classes"][index][:count]})
        count = int(served["num_detections"][index])
        guesses.append({"boxes": served["boxes"][index][:count],
                        "scores": served["scores"][index][:count],
                        "classes": served["classes"][index][:count]})
    if not sum(len(truth["labels"]) for truth in truths):
        # No reference detection at all: parity means the export finds none either.
        found = sum(len(guess["classes"]) for guess in guesses)
        return {"map50": 1.0 if not found else 0.0, "map": 1.0 if not found else 0.0}
    import warnings

    with warnings.catch_warnings():  # classes the reference never detects
        warnings.simplefilter("ignore")
        scores = coco_map(truths, guesses)
    return {"map50": float(scores["map50"]), "map": float(scores["map"])}


def _detection_map50(truth, outputs: Mapping[str, np.ndarray]) -> float:
    """mAP50 of served detections against the true boxes (pycocotools)."""
    guesses = []
    for index in range(len(truth)):
        count = int(outputs["num_detections"][index])
        guesses.append({"boxes": outputs["boxes"][index][:count],
                        "scores": outputs["scores"][index][:count],
                        "classes": outputs["classes"][index][:count]})
    import warnings

    with warnings.catch_warnings():  # classes without a true box in these images
        warnings.simplefilter("ignore")
        return float(coco_map(list(truth), guesses)["map50"])


def failures(metrics: Mapping[str, float], quantize: str | None) -> list[str]:
    """The metrics outside their threshold, as readable sentences (empty: parity holds)."""
    failed = []
    bars = THRESHOLDS[quantize]
    for name, (kind, bound) in bars.items():
        if name not in metrics:
            continue
        drop, accuracy = _REPLACED_BY_TRUTH.get(name, (None, None))
        if drop in metrics and drop in bars and metrics.get(
                accuracy, 0.0) >= MIN_REFERENCE_ACCURACY:
            continue
        share = _REPLACED_PER_PIXEL.get(name)
        if share in metrics and share in bars:
            continue
        value = metrics[name]
        ok = value <= bound if kind == "max" else value >= bound
        if not ok or not np.isfinite(value):
            failed.append(f"{name} = {value:.6g} (must be {'<=' if kind == 'max' else '>='} "
                          f"{bound:g})"
                          f"{_why_not_against_truth(metrics, drop, accuracy) if drop in bars else ''}")
    return failed


def _why_not_against_truth(metrics: Mapping[str, float], drop: str | None,
                           accuracy: str | None) -> str:
    """Why a bar against the Keras model's own outputs held although the truth was known
    and the quantization has a bar on the drop against it: the model's own accuracy is
    below `MIN_REFERENCE_ACCURACY` (else "")."""
    if drop not in metrics or accuracy not in metrics:
        return ""
    return (f"; against the truth the export's {drop.split('_')[0]} is within "
            f"{abs(metrics[drop]):.4g} of the Keras model's, but that model's own {accuracy} "
            f"{metrics[accuracy]:.4g} is below {MIN_REFERENCE_ACCURACY:g}, so the export is "
            "held to the Keras model's own outputs instead: a more accurate model is held "
            "to its accuracy ('within 2 points')")


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of parity rows (one dict per export; keys become columns)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if 0.99 <= value < 1.0:  # a share near its 99.9% bar: 0.99895 is not 0.9990
                return f"{value:.5f}"
            return f"{value:.3g}" if abs(value) < 1e-2 and value else f"{value:.4f}"
        return str(value)

    table = [columns] + [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in table) for index in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in table)
