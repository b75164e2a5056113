"""`coco_map` against pycocotools run directly on COCO JSON files."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

import visionkit as vk
from visionkit.train.detection_metrics import coco_map


def _seeded_case(seed=0, num_images=12, num_classes=3):
    """Ground truth and noisy predictions with misses, duplicates and false positives."""
    rng = np.random.default_rng(seed)
    truths, guesses = [], []
    for _ in range(num_images):
        count = int(rng.integers(1, 5))
        xy = rng.uniform(0, 80, (count, 2))
        wh = rng.uniform(8, 40, (count, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, num_classes, count)
        pred_boxes, scores, classes = [], [], []
        for box, label in zip(boxes, labels):
            if rng.random() < 0.2:  # a miss
                continue
            pred_boxes.append(box + rng.normal(0, 3, 4))
            scores.append(rng.uniform(0.3, 1))
            classes.append(label if rng.random() < 0.85 else (label + 1) % num_classes)
            if rng.random() < 0.3:  # a duplicate detection of the same object
                pred_boxes.append(box + rng.normal(0, 2, 4))
                scores.append(rng.uniform(0.1, 0.9))
                classes.append(label)
        for _ in range(int(rng.integers(0, 3))):  # false positives
            xy = rng.uniform(0, 80, 2)
            pred_boxes.append(np.concatenate([xy, xy + rng.uniform(8, 30, 2)]))
            scores.append(rng.uniform(0, 0.6))
            classes.append(int(rng.integers(0, num_classes)))
        truths.append({"boxes": boxes, "labels": labels})
        guesses.append({"boxes": np.asarray(pred_boxes).reshape(-1, 4),
                        "scores": np.asarray(scores), "classes": np.asarray(classes)})
    return truths, guesses


def _pycocotools_directly(tmp_path, truths, guesses):
    """COCO JSON files written by hand, then COCO / loadRes / COCOeval as documented."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (truth, guess) in enumerate(zip(truths, guesses)):
        images.append({"id": image_id, "width": 128, "height": 128, "file_name": f"{image_id}"})
        for (x1, y1, x2, y2), label in zip(truth["boxes"], truth["labels"]):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(label) + 1, "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1)})
        for (x1, y1, x2, y2), score, label in zip(guess["boxes"], guess["scores"],
                                                  guess["classes"]):
            results.append({"image_id": image_id, "category_id": int(label) + 1,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    truth_file, result_file = tmp_path / "gt.json", tmp_path / "dt.json"
    truth_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                      "categories": [{"id": i} for i in (1, 2, 3)]}))
    result_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        truth_set = COCO(str(truth_file))
        evaluation = COCOeval(truth_set, truth_set.loadRes(str(result_file)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    per_class = []
    for k in range(3):
        values = evaluation.eval["precision"][:, :, k, 0, 2]
        per_class.append(values[values > -1].mean())
    return evaluation.stats, per_class


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_map_agrees_with_pycocotools_run_directly(tmp_path, seed):
    truths, guesses = _seeded_case(seed)
    stats, per_class = _pycocotools_directly(tmp_path, truths, guesses)
    result = coco_map(truths, guesses, class_names=["a", "b", "c"])
    assert 0.1 < result["map"] < 0.9  # an informative case, neither trivial nor hopeless
    assert result["map"] == pytest.approx(stats[0], abs=1e-9)
    assert result["map50"] == pytest.approx(stats[1], abs=1e-9)
    assert [result["ap_per_class"][n] for n in "abc"] == pytest.approx(per_class, abs=1e-9)


def test_perfect_predictions_score_one_and_padding_is_ignored():
    truths, _ = _seeded_case(2)
    padded_truths = [{"boxes": np.concatenate([t["boxes"], -np.ones((2, 4))]),
                      "labels": np.concatenate([t["labels"], [-1, -1]])} for t in truths]
    perfect = [{"boxes": t["boxes"], "scores": np.ones(len(t["labels"])),
                "classes": t["labels"]} for t in truths]
    result = vk.train.metrics.coco_map(padded_truths, perfect)
    assert result["map"] == pytest.approx(1.0) and result["map50"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in result["ap_per_class"].values())


def test_no_predictions_scores_zero_and_bad_input_is_named():
    truths, _ = _seeded_case(3, num_images=2)
    empty = [{"boxes": np.zeros((0, 4)), "scores": [], "classes": []}] * 2
    assert coco_map(truths, empty)["map"] == 0.0
    with pytest.raises(ValueError, match="one prediction dict per image"):
        coco_map(truths, empty[:1])
    with pytest.raises(ValueError, match="lack 'scores'"):
        coco_map(truths, [{"boxes": [], "classes": []}] * 2)
