"""The parity rules on hand-made outputs: what each quantization's bars let through.

float16 holds a segmenter per pixel (share of pixels within 1e-2, masks, mIoU) and a
classifier by its single largest difference; int8 holds a trained model's accuracy
against the truth within 2 points of the Keras model's.
"""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.export import parity

CLASSES = 3


def _segmenter_outputs(seed: int = 0, size: int = 64, images: int = 2):
    """A Keras-like reference: blocky masks and confident, non-tied probabilities."""
    rng = np.random.default_rng(seed)
    mask = np.kron(rng.integers(0, CLASSES, (images, size // 8, size // 8)),
                   np.ones((1, 8, 8), np.int64))
    probabilities = np.full((*mask.shape, CLASSES), 0.1)
    np.put_along_axis(probabilities, mask[..., None], 0.8, axis=-1)
    probabilities += rng.uniform(-0.01, 0.01, probabilities.shape)  # no exact ties
    return {"mask": mask, "probabilities": probabilities}


def _flip_window(outputs, image: int, row: int, column: int, new_class: int):
    """One 2x2 window moved the way a flipped max-unpooling switch moves it: its four
    pixels' probabilities off by up to 0.7, their class changed."""
    served = {key: value.copy() for key, value in outputs.items()}
    window = (image, slice(row, row + 2), slice(column, column + 2))
    served["probabilities"][window] = 0.1
    served["probabilities"][(*window, new_class)] = 0.8
    served["mask"][window] = new_class
    return served


def _naive_share_within(reference, served, tolerance):
    inside = total = 0
    for index in np.ndindex(reference["mask"].shape):
        total += 1
        inside += all(abs(float(a) - float(b)) <= tolerance for a, b in
                      zip(served["probabilities"][index], reference["probabilities"][index]))
    return inside / total


def test_float16_segmenter_with_one_flipped_window_passes_the_per_pixel_rule():
    reference = _segmenter_outputs()
    rng = np.random.default_rng(1)
    served = {"mask": reference["mask"].copy(),
              "probabilities": reference["probabilities"]
              + rng.uniform(-2e-3, 2e-3, reference["probabilities"].shape)}
    new_class = (int(reference["mask"][0, 8, 8]) + 1) % CLASSES
    served = _flip_window(served, 0, 8, 8, new_class)
    metrics = parity.measure("segmentation", reference, served)
    # Both figures are reported: the worst pixel and the share within 1e-2.
    assert metrics["max_abs_probabilities"] > 0.6
    share = metrics[parity.PIXELS_WITHIN]
    assert share == pytest.approx(_naive_share_within(reference, served, 1e-2))
    assert share == pytest.approx(1 - 4 / (2 * 64 * 64))  # 0.99951
    assert metrics["mask_agreement"] == pytest.approx(1 - 4 / (2 * 64 * 64))
    # float16: the per-pixel rule holds; the single-maximum rule alone would fail it.
    assert parity.failures(metrics, "float16") == []
    bound = parity.THRESHOLDS["float16"]["max_abs_probabilities"][1]
    assert metrics["max_abs_probabilities"] > bound
    # float32 keeps the strict maximum (1e-4) for segmenters too.
    assert [line.split(" =")[0] for line in parity.failures(metrics, None)] == [
        "max_abs_probabilities"]


def test_float16_segmenter_off_everywhere_fails_the_per_pixel_rule():
    reference = _segmenter_outputs(seed=2)
    # Every probability off by 0.02 (classes unchanged): a real float16 fault.
    served = {"mask": reference["mask"].copy(),
              "probabilities": reference["probabilities"] + 0.02}
    metrics = parity.measure("segmentation", reference, served)
    assert metrics[parity.PIXELS_WITHIN] == 0.0
    assert metrics["mask_agreement"] == 1.0
    assert parity.failures(metrics, "float16") == [
        f"{parity.PIXELS_WITHIN} = 0 (must be >= 0.999)"]
    # One pixel in 500 off (more than one flipped window in 1,000): 0.998 < 0.999.
    served = {key: value.copy() for key, value in reference.items()}
    flat = served["probabilities"].reshape(-1, CLASSES)
    flat[::500] += 0.05
    metrics = parity.measure("segmentation", reference, served)
    assert metrics[parity.PIXELS_WITHIN] == pytest.approx(1 - len(flat[::500]) / len(flat))
    assert [line.split(" =")[0] for line in parity.failures(metrics, "float16")] == [
        parity.PIXELS_WITHIN]


def test_float16_segmenter_mask_and_miou_bars():
    reference = _segmenter_outputs(seed=3, images=1)
    truth = reference["mask"].copy()
    # Class 2 painted as class 0 everywhere: probabilities and masks both far off.
    served = {key: value.copy() for key, value in reference.items()}
    lost = served["mask"] == 2
    assert 0.05 < lost.mean() < 0.95
    served["mask"][lost] = 0
    served["probabilities"][lost] = reference["probabilities"][lost][:, [2, 1, 0]]
    metrics = parity.measure("segmentation", reference, served, truth)
    assert metrics["reference_miou"] == 1.0
    assert metrics["miou_drop"] == pytest.approx(1 - np.mean(
        [np.sum((served["mask"] == c) & (truth == c)) / np.sum((served["mask"] == c) | (truth == c))
         for c in (0, 1, 2)]))
    failed = [line.split(" =")[0] for line in parity.failures(metrics, "float16")]
    assert failed == [parity.PIXELS_WITHIN, "mask_agreement", "miou_drop"]


def test_float16_classifier_keeps_the_strict_maximum():
    # 100 images, one of them off by 0.3 (the same share as one flipped window): a
    # classifier's output is one vector per image, so the worst image decides.
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet(np.ones(CLASSES), 100)
    served_probabilities = probabilities.copy()
    served_probabilities[7] = probabilities[7][[1, 2, 0]]
    assert np.max(np.abs(served_probabilities - probabilities)) > 1e-2
    reference = {"probabilities": probabilities, "class_id": probabilities.argmax(-1)}
    served = {"probabilities": served_probabilities,
              "class_id": served_probabilities.argmax(-1)}
    metrics = parity.measure("classification", reference, served)
    assert parity.PIXELS_WITHIN not in metrics
    assert metrics["top1_agreement"] == pytest.approx(0.99)
    assert [line.split(" =")[0] for line in parity.failures(metrics, "float16")] == [
        "max_abs_probabilities"]


def _detections(boxes, scores, classes, slots: int = 8):
    """One image's served detections, padded to `slots` rows as NMS outputs are."""
    count = len(boxes)
    padded = np.zeros((slots, 4), np.float32)
    padded[:count] = boxes
    return {"boxes": padded[None],
            "scores": np.pad(np.asarray(scores, np.float32), (0, slots - count))[None],
            "classes": np.pad(np.asarray(classes, np.int32), (0, slots - count))[None],
            "num_detections": np.array([count])}


def test_int8_detector_is_held_to_the_truth_when_keras_is_trained():
    # Four true boxes. Keras finds them all, plus a weak false box; the int8 export finds
    # the four and not the false one: below 0.98 against Keras's own detections, but
    # as accurate as Keras against the truth, the criterion for a trained detector.
    true = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10], [0, 40, 10, 50]],
                    np.float32)
    truth = [{"boxes": true, "labels": np.array([0, 0, 1, 1])}]
    keras_boxes = _detections([*true, [40, 40, 50, 50]], [0.9, 0.8, 0.7, 0.6, 0.55],
                              [0, 0, 1, 1, 1])
    served = _detections(true, [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1])
    metrics = parity.measure("detection", keras_boxes, served, truth)
    assert metrics["reference_map50_truth"] == pytest.approx(1.0)
    assert metrics["map50_truth"] == pytest.approx(1.0)
    assert metrics["map50_drop"] == pytest.approx(0.0)
    assert metrics["map50"] < 0.98  # the false box Keras found is missing
    assert parity.failures(metrics, "int8") == []
    # The export loses one true box: class 1's AP50 against the truth falls from 1.0 to
    # about 0.5, mAP50 to about 0.75: 25 points, refused.
    served = _detections(true[:3], [0.9, 0.8, 0.7], [0, 0, 1])
    metrics = parity.measure("detection", keras_boxes, served, truth)
    assert metrics["map50_drop"] == pytest.approx(0.25, abs=0.01)
    assert [line.split(" =")[0] for line in parity.failures(metrics, "int8")] == [
        "map50_drop"]


@pytest.mark.parametrize("bar, drop, accuracy", [
    ("map50", "map50_drop", "reference_map50_truth"),
    ("mask_miou", "miou_drop", "reference_miou")])
def test_a_quantized_export_of_a_weak_model_says_why_its_own_outputs_hold_it(
        bar, drop, accuracy):
    # The figures of a RetinaNet at mAP50 0.394 (int8 LiteRT, 100 validation images): as
    # accurate as Keras against the truth, 0.925 against Keras's own detections.
    metrics = {bar: 0.925, drop: 0.0002, accuracy: 0.394}
    [failure] = parity.failures(metrics, "int8")
    assert failure.startswith(f"{bar} = 0.925 (must be >= 0.98); against the truth")
    assert f"within 0.0002 of the Keras model's, but that model's own {accuracy} 0.394 " \
           "is below 0.5" in failure
    # A trained model is held to the truth alone; without the truth nothing is added.
    assert parity.failures({**metrics, accuracy: 0.6}, "int8") == []
    assert parity.failures({bar: 0.925}, "int8") == [f"{bar} = 0.925 (must be >= 0.98)"]
    # float32 has no bar on the drop against the truth: nothing to explain.
    if bar == "map50":
        assert parity.failures(metrics, None) == ["map50 = 0.925 (must be >= 0.99)"]


def test_table_prints_the_maximum_and_the_share_without_rounding_across_the_bar():
    table = parity.format_table([{"format": "litert", "max_abs_probabilities": 0.31,
                                  parity.PIXELS_WITHIN: 0.99895, "mask_agreement": 0.9996}])
    header, row = table.splitlines()
    assert header.split() == ["format", "max_abs_probabilities", parity.PIXELS_WITHIN,
                              "mask_agreement"]
    assert row.split() == ["litert", "0.3100", "0.99895", "0.99960"]
