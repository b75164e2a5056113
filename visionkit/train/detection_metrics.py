"""COCO detection metrics computed by pycocotools, the reference implementation.

Example:

>>> import numpy as np
>>> truth = [{"boxes": np.array([[10., 10., 50., 40.]]), "labels": np.array([0])}]
>>> guess = [{"boxes": np.array([[10., 10., 50., 40.]]), "scores": np.array([0.9]),
...           "classes": np.array([0])}]
>>> result = coco_map(truth, guess)
>>> round(result["map"], 3), round(result["map50"], 3)
(1.0, 1.0)
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["coco_map", "UNDEFINED"]

logger = logging.getLogger(__name__)

# The AP of a class with no ground truth is undefined; pycocotools marks it -1 in its
# arrays, visionkit reports NaN (JSON `NaN`) and leaves it out of the mean, as COCO does.
UNDEFINED = math.nan


def _rows(value: Any, width: int | None = None) -> np.ndarray:
    """NumPy float64 rows from a list, NumPy array, tf.Tensor or tf.RaggedTensor."""
    if value is None:
        value = []
    if hasattr(value, "to_tensor"):  # a RaggedTensor: its values, row by row
        value = value.flat_values if width is None else value.to_tensor(-1.0)
    if hasattr(value, "numpy"):
        value = value.numpy()
    array = np.asarray(value, np.float64)
    return array.reshape(-1, width) if width else array.reshape(-1)


def coco_map(ground_truth: Sequence[dict[str, Any]], predictions: Sequence[dict[str, Any]],
             class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """COCO mAP@[.5:.95], mAP@.5 and per-class AP with pycocotools.

    Boxes are xyxy pixels. Rows whose label (or class) is negative are padding and are
    ignored, so batched, -1-padded arrays can be passed as they are. Every ground-truth
    box counts as non-crowd; areas are the boxes' own (width x height). Values may be
    lists, NumPy arrays or tensors.

    A class with no ground-truth box has no AP (COCO's evaluation marks it -1): it is
    reported as NaN in `ap_per_class` and left out of the means, and a warning names
    it. With no ground truth at all, `map` and `map50` are NaN.

    Args:
        ground_truth: one dict per image with `boxes` `[k, 4]` and `labels` `[k]`.
        predictions: one dict per image (same order) with `boxes` `[m, 4]`, `scores`
            `[m]` and `classes` `[m]`.
        class_names: names used as the keys of `ap_per_class`. Defaults to the class ids
            as strings.

    Returns:
        `map` (AP averaged over IoU .50:.05:.95, COCO's primary metric), `map50` (AP at
        IoU .5), `ap_per_class` (AP@[.5:.95] of every class in `class_names`, or of every
        class seen; NaN for a class without ground truth), `classes_without_ground_truth`
        (their names), `num_images`, `num_ground_truth`, `num_predictions`.

    Raises:
        ValueError: if the two lists differ in length or an entry lacks a key.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(ground_truth) != len(predictions):
        raise ValueError(f"Expected one prediction dict per image; received "
                         f"{len(ground_truth)} ground-truth and {len(predictions)} "
                         "prediction dicts.")
    images, annotations, detections = [], [], []
    class_ids: set[int] = set()
    for image_id, (truth, guess) in enumerate(zip(ground_truth, predictions), start=1):
        for key in ("boxes", "labels"):
            if key not in truth:
                raise ValueError(f"Ground truth of image {image_id - 1} lacks {key!r}; "
                                 f"expected keys 'boxes' and 'labels'.")
        for key in ("boxes", "scores", "classes"):
            if key not in guess:
                raise ValueError(f"Predictions of image {image_id - 1} lack {key!r}; "
                                 f"expected keys 'boxes', 'scores' and 'classes'.")
        images.append({"id": image_id})
        boxes, labels = _rows(truth["boxes"], 4), _rows(truth["labels"])
        for box, label in zip(boxes, labels):
            if label < 0:
                continue
            width, height = box[2] - box[0], box[3] - box[1]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                "bbox": [float(box[0]), float(box[1]), float(width), float(height)],
                "area": float(width * height), "iscrowd": 0})
            class_ids.add(int(label))
        boxes, scores, classes = (_rows(guess["boxes"], 4), _rows(guess["scores"]),
                                  _rows(guess["classes"]))
        for box, score, label in zip(boxes, scores, classes):
            if label < 0:
                continue
            detections.append({
                "image_id": image_id, "category_id": int(label), "score": float(score),
                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]),
                         float(box[3] - box[1])]})
            class_ids.add(int(label))

    names = list(class_names) if class_names is not None else None

    def name_of(class_id: int) -> str:
        return names[class_id] if names is not None and 0 <= class_id < len(names) \
            else str(class_id)

    if names is not None:
        class_ids |= set(range(len(names)))
    with_truth = {a["category_id"] for a in annotations}
    without_truth = sorted(class_ids - with_truth)
    result: dict[str, Any] = {"map": UNDEFINED, "map50": UNDEFINED,
                              "ap_per_class": {name_of(c): UNDEFINED for c in sorted(class_ids)},
                              "classes_without_ground_truth": [name_of(c) for c in without_truth],
                              "num_images": len(images),
                              "num_ground_truth": len(annotations),
                              "num_predictions": len(detections)}
    if without_truth:
        logger.warning("%d class(es) have no ground-truth box in these %d images, so their AP "
                       "is undefined (NaN) and left out of mAP: %s", len(without_truth),
                       len(images), [name_of(c) for c in without_truth][:10])
    if not annotations:
        return result
    truth_set = COCO()
    truth_set.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c} for c in sorted(class_ids)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth_set.createIndex()
        if not detections:
            result.update(map=0.0, map50=0.0)
            result["ap_per_class"].update({name_of(c): 0.0 for c in sorted(with_truth)})
            return result
        detection_set = truth_set.loadRes(detections)
        evaluation = COCOeval(truth_set, detection_set, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    result["map"] = float(stats[0]) if stats[0] > -1 else UNDEFINED
    result["map50"] = float(stats[1]) if stats[1] > -1 else UNDEFINED
    # precision: [IoU thresholds, recall points, classes, area ranges, max detections];
    # area range 0 is "all", the last max-detections setting is 100. -1 marks "no data".
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    for position, class_id in enumerate(evaluation.params.catIds):
        if class_id not in with_truth:
            continue
        values = precision[:, :, position]
        values = values[values > -1]
        result["ap_per_class"][name_of(class_id)] = float(values.mean()) if values.size \
            else UNDEFINED
    return result
