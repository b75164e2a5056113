"""Metrics take NumPy arrays, lists and tensors alike; an AP without ground truth is NaN."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import tensorflow as tf

from visionkit.train.detection_metrics import coco_map
from visionkit.train.segmentation_metrics import (
    DiceCoefficient,
    PixelAccuracy,
    SegmentationMeanIoU,
    confusion_matrix,
    mean_iou,
)

CONVERTERS = {"numpy": np.asarray, "tensor": tf.convert_to_tensor,
              "list": lambda a: np.asarray(a).tolist()}


def _masks(seed=0, classes=3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, (2, 5, 7))
    truth[0, 0, :3] = 255
    scores = rng.random((2, 5, 7, classes)).astype(np.float32)
    return truth, scores


def _naive_ious(truth, predicted, classes):
    ious = []
    valid = truth != 255
    for c in range(classes):
        union = np.sum(((truth == c) | (predicted == c)) & valid)
        if union:
            ious.append(np.sum((truth == c) & (predicted == c) & valid) / union)
    return ious


@pytest.mark.parametrize("kind", sorted(CONVERTERS))
def test_segmentation_metrics_take_any_array_kind(kind):
    convert = CONVERTERS[kind]
    truth, scores = _masks()
    predicted = scores.argmax(-1)
    expected_iou = np.mean(_naive_ious(truth, predicted, 3))
    expected_accuracy = np.mean((predicted == truth)[truth != 255])
    metric = SegmentationMeanIoU(3)
    metric.update_state(convert(truth), convert(scores))
    assert float(metric.result()) == pytest.approx(expected_iou, rel=1e-6)
    accuracy = PixelAccuracy(3)
    accuracy.update_state(convert(truth), convert(scores))
    assert float(accuracy.result()) == pytest.approx(expected_accuracy, rel=1e-6)
    dice = DiceCoefficient(3)
    dice.update_state(convert(truth), convert(scores))
    assert 0 < float(dice.result()) <= 1
    assert mean_iou(confusion_matrix(convert(truth), convert(predicted), 3)) == \
        pytest.approx(expected_iou)


def _detections():
    truths = [{"boxes": [[10, 10, 40, 40], [50, 50, 90, 80]], "labels": [0, 1]},
              {"boxes": [[5, 5, 30, 25]], "labels": [0]}]
    guesses = [{"boxes": [[11, 10, 40, 41], [50, 52, 88, 80], [0, 0, 20, 20]],
                "scores": [0.9, 0.8, 0.7], "classes": [0, 1, 2]},
               {"boxes": [[6, 5, 30, 26], [60, 60, 70, 70]], "scores": [0.6, 0.5],
                "classes": [0, 1]}]
    return truths, guesses


@pytest.mark.parametrize("kind", ["tensor", "list"])
def test_coco_map_takes_tensors_and_lists(kind):
    convert = CONVERTERS[kind]
    truths, guesses = _detections()
    reference = coco_map(truths, guesses, class_names=["a", "b", "c", "d"])
    converted = coco_map([{k: convert(np.asarray(v, np.float32)) for k, v in t.items()}
                          for t in truths],
                         [{k: convert(np.asarray(v, np.float32)) for k, v in g.items()}
                          for g in guesses], class_names=["a", "b", "c", "d"])
    for key in ("map", "map50"):
        assert converted[key] == pytest.approx(reference[key])
    ragged = tf.ragged.constant([t["labels"] for t in truths])
    assert coco_map([{"boxes": t["boxes"], "labels": ragged[i]} for i, t in enumerate(truths)],
                    guesses)["map"] == pytest.approx(reference["map"])


def test_a_class_without_ground_truth_has_undefined_ap_as_in_pycocotools(caplog):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truths, guesses = _detections()
    result = coco_map(truths, guesses, class_names=["a", "b", "c", "d"])
    # Class "c" has a (false) detection but no ground truth, "d" has neither.
    assert np.isnan(result["ap_per_class"]["c"]) and np.isnan(result["ap_per_class"]["d"])
    assert result["classes_without_ground_truth"] == ["c", "d"]
    assert "no ground-truth box" in caplog.text and "'c'" in caplog.text
    # pycocotools on the same data, categories 0..3 written by hand.
    images = [{"id": i + 1} for i in range(2)]
    annotations, detections = [], []
    for image_id, (truth, guess) in enumerate(zip(truths, guesses), start=1):
        for (x1, y1, x2, y2), label in zip(truth["boxes"], truth["labels"]):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": label, "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1)})
        for (x1, y1, x2, y2), score, label in zip(guess["boxes"], guess["scores"],
                                                  guess["classes"]):
            detections.append({"image_id": image_id, "category_id": label, "score": score,
                               "bbox": [x1, y1, x2 - x1, y2 - y1]})
    with contextlib.redirect_stdout(io.StringIO()):
        truth_set = COCO()
        truth_set.dataset = {"images": images, "annotations": annotations,
                             "categories": [{"id": c} for c in range(4)]}
        truth_set.createIndex()
        evaluation = COCOeval(truth_set, truth_set.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    for index, name in enumerate("abcd"):
        values = precision[:, :, index]
        if np.all(values == -1):  # pycocotools' "undefined"
            assert np.isnan(result["ap_per_class"][name])
        else:
            assert result["ap_per_class"][name] == pytest.approx(values[values > -1].mean())
    assert result["map"] == pytest.approx(evaluation.stats[0])
    assert result["map50"] == pytest.approx(evaluation.stats[1])


def test_no_ground_truth_at_all_is_undefined_not_zero():
    empty_truth = [{"boxes": np.zeros((0, 4)), "labels": np.zeros(0)}]
    guess = [{"boxes": [[0, 0, 5, 5]], "scores": [0.5], "classes": [0]}]
    result = coco_map(empty_truth, guess, class_names=["a"])
    assert np.isnan(result["map"]) and np.isnan(result["map50"])
    assert np.isnan(result["ap_per_class"]["a"])
