"""visionkit's segmentation cross-entropy and mean IoU are Keras's own (`ignore_class`):
checked against naive references on hand-made masks with the ignore value 255, a class
that never occurs, and a batch with every pixel ignored."""

import math

import keras
import numpy as np
import pytest

from visionkit.train.losses import SegmentationCrossEntropy
from visionkit.train.segmentation_metrics import SegmentationMeanIoU
from visionkit.vocabulary import IGNORE_INDEX

# Two 2x3 masks over 4 classes: class 3 never occurs in the truth (nor, below, in the
# prediction), and three pixels are ignored.
MASKS = np.array([[[0, 1, 255], [2, 2, 0]],
                  [[255, 255, 1], [1, 0, 2]]], np.int32)
LOGITS = np.array([[[[2.0, 0.5, 0.1, -3.0], [0.2, 1.5, 0.3, -3.0], [9.0, 0.0, 0.0, 0.0]],
                    [[0.1, 0.2, 2.5, -3.0], [1.0, 0.9, 0.8, -3.0], [0.3, 0.2, 0.1, -3.0]]],
                   [[[0.0, 0.0, 9.0, 0.0], [0.0, 9.0, 0.0, 0.0], [0.4, 1.2, 0.1, -3.0]],
                    [[2.0, 0.1, 0.0, -3.0], [1.0, 0.2, 0.3, -3.0], [0.1, 0.2, 0.3, -3.0]]]],
                  np.float32)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _naive_cross_entropy(masks, probabilities):
    """The mean over the non-ignored pixels of -log p(true class), pixel by pixel."""
    total, count = 0.0, 0
    for index in np.ndindex(masks.shape):
        if masks[index] != IGNORE_INDEX:
            total -= math.log(probabilities[index][masks[index]])
            count += 1
    return total / count if count else 0.0


def _naive_mean_iou(masks, predicted, num_classes):
    ious = []
    for c in range(num_classes):
        counted = masks != IGNORE_INDEX
        truth, guess = (masks == c) & counted, (predicted == c) & counted
        union = np.sum(truth | guess)
        if union:
            ious.append(np.sum(truth & guess) / union)
    return float(np.mean(ious)) if ious else 0.0


@pytest.mark.parametrize("from_logits", [True, False])
def test_segmentation_cross_entropy_is_the_mean_over_pixels_not_ignored(from_logits):
    probabilities = _softmax(LOGITS.astype(np.float64))
    expected = _naive_cross_entropy(MASKS, probabilities)
    inputs = LOGITS if from_logits else probabilities.astype(np.float32)
    loss = SegmentationCrossEntropy(from_logits=from_logits)
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert float(loss(MASKS, inputs)) == pytest.approx(expected, rel=1e-5)
    # Masks with a channel axis [B, H, W, 1] give the same.
    assert float(loss(MASKS[..., None], inputs)) == pytest.approx(expected, rel=1e-5)
    # The ignored pixels weigh nothing: changing their predictions changes nothing.
    changed = np.where((MASKS == IGNORE_INDEX)[..., None], inputs[..., ::-1], inputs)
    assert float(loss(MASKS, changed)) == pytest.approx(expected, rel=1e-5)


def test_segmentation_cross_entropy_of_a_batch_with_every_pixel_ignored_is_zero():
    loss = SegmentationCrossEntropy(from_logits=True)
    assert float(loss(np.full_like(MASKS, IGNORE_INDEX), LOGITS)) == 0.0


def test_segmentation_cross_entropy_round_trips_its_config():
    loss = SegmentationCrossEntropy(from_logits=True, ignore_index=7, name="loss")
    again = SegmentationCrossEntropy.from_config(loss.get_config())
    assert (again.from_logits, again.ignore_index, again.name) == (True, 7, "loss")
    masks = np.where(MASKS == IGNORE_INDEX, 7, MASKS)
    assert float(again(masks, LOGITS)) == pytest.approx(
        _naive_cross_entropy(MASKS, _softmax(LOGITS.astype(np.float64))), rel=1e-5)


def test_segmentation_mean_iou_leaves_out_ignored_pixels_and_empty_classes():
    predicted = LOGITS.argmax(-1)
    expected = _naive_mean_iou(MASKS, predicted, 4)
    # By hand over the nine counted pixels: class 0 IoU 3/5, class 1 2/3, class 2 2/3
    # (the three ignored pixels' predictions, 0, 2 and 1, are left out); class 3 is in
    # neither masks nor predictions and is not counted.
    assert expected == pytest.approx((3 / 5 + 2 / 3 + 2 / 3) / 3)
    metric = SegmentationMeanIoU(4)
    assert isinstance(metric, keras.metrics.MeanIoU)
    metric.update_state(MASKS[:1], LOGITS[:1])  # accumulates over batches
    metric.update_state(MASKS[1:], _softmax(LOGITS[1:]))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    metric.reset_state()
    metric.update_state(np.full_like(MASKS, IGNORE_INDEX), LOGITS)
    assert float(metric.result()) == 0.0
    again = SegmentationMeanIoU.from_config(SegmentationMeanIoU(4, name="mean_iou").get_config())
    assert (again.num_classes, again.ignore_index, again.name) == (4, IGNORE_INDEX, "mean_iou")
