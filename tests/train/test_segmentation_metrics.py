"""Segmentation metrics and losses against hand-computed cases and naive loops."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.train.losses import CrossEntropyDice, DiceLoss, FocalLoss, SegmentationCrossEntropy
from visionkit.train.metrics import (
    DiceCoefficient,
    PixelAccuracy,
    SegmentationMeanIoU,
    confusion_matrix,
    iou_per_class,
    mean_dice,
    mean_iou,
    pixel_accuracy,
)

# The textbook case: per-class IoUs 4/7, 2/6, 2/4, 3/4, mean 0.53869.
TEXTBOOK_MEAN_IOU = 0.53869


def textbook_label_maps() -> tuple[np.ndarray, np.ndarray]:
    """4x4 true / predicted maps with exactly the textbook overlaps, plus an ignored map.

    Pixels (true, predicted): (0,0) x4, (1,1) x2, (2,2) x2, (3,3) x3, (0,1) x2, (1,0),
    (1,2), (2,3). Class 0: TP 4, union 6 + 5 - 4 = 7. Class 1: TP 2, union 4 + 4 - 2 = 6.
    Class 2: TP 2, union 3 + 3 - 2 = 4. Class 3: TP 3, union 3 + 4 - 3 = 4.
    """
    pairs = ([(0, 0)] * 4 + [(1, 1)] * 2 + [(2, 2)] * 2 + [(3, 3)] * 3
             + [(0, 1)] * 2 + [(1, 0), (1, 2), (2, 3)])
    true = np.array([t for t, _ in pairs]).reshape(4, 4)
    predicted = np.array([p for _, p in pairs]).reshape(4, 4)
    # A second map entirely ignored (255), predicted as class 3: it must not count.
    return np.stack([true, np.full((4, 4), 255)]), np.stack([predicted, np.full((4, 4), 3)])


def test_textbook_mean_iou():
    true, predicted = textbook_label_maps()
    matrix = confusion_matrix(true, predicted, 4)
    np.testing.assert_allclose(iou_per_class(matrix), [4 / 7, 2 / 6, 2 / 4, 3 / 4])
    assert mean_iou(matrix) == pytest.approx(TEXTBOOK_MEAN_IOU, abs=5e-6)
    assert pixel_accuracy(matrix) == pytest.approx(11 / 16)
    # Dice = 2 TP / (2 TP + FP + FN), per class.
    assert mean_dice(matrix) == pytest.approx(np.mean([8 / 11, 4 / 8, 4 / 6, 6 / 7]))


def test_textbook_mean_iou_through_the_keras_metric_and_evaluate():
    true, predicted = textbook_label_maps()
    scores = tf.one_hot(predicted, 4)  # "probabilities" whose argmax is `predicted`
    metric = SegmentationMeanIoU(num_classes=4)
    metric.update_state(true, scores)
    assert float(metric.result()) == pytest.approx(TEXTBOOK_MEAN_IOU, abs=5e-6)
    accuracy = PixelAccuracy(num_classes=4)
    accuracy.update_state(true, scores)
    assert float(accuracy.result()) == pytest.approx(11 / 16)

    # vk.train.evaluate on a "model" that returns those scores.
    inputs = keras.Input((4, 4, 4))
    identity = keras.Model(inputs, keras.layers.Activation("linear", name="predictions")(inputs))
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(scores), true)).batch(1)
    result = vk.train.evaluate(identity, dataset, task="segmentation",
                               class_names=["a", "b", "c", "d"])
    assert result["mean_iou"] == pytest.approx(TEXTBOOK_MEAN_IOU, abs=5e-6)
    assert result["iou_per_class"] == pytest.approx({"a": 4 / 7, "b": 2 / 6, "c": 0.5, "d": 0.75})
    assert result["pixel_accuracy"] == pytest.approx(11 / 16)
    assert result["num_examples"] == 2
    assert set(result) >= {"mean_iou", "iou_per_class", "dice", "pixel_accuracy"}


def test_confusion_matrix_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, (3, 7, 9))
    true[rng.random(true.shape) < 0.2] = 255
    predicted = rng.integers(0, 5, (3, 7, 9))
    expected = np.zeros((5, 5), np.int64)
    for t, p in zip(true.ravel(), predicted.ravel()):
        if t != 255:
            expected[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(true, predicted, 5), expected)


def test_absent_classes_are_left_out_of_the_mean():
    matrix = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])  # class 2 never occurs
    assert np.isnan(iou_per_class(matrix)[2])
    assert mean_iou(matrix) == pytest.approx((3 / 4 + 2 / 3) / 2)
    metric = SegmentationMeanIoU(3)
    metric.update_state(np.array([[0, 0, 0, 0, 1, 1]]), tf.one_hot([[0, 0, 0, 1, 1, 1]], 3))
    assert float(metric.result()) == pytest.approx((3 / 4 + 2 / 3) / 2)
    dice = DiceCoefficient(3)
    dice.update_state(np.array([[0, 0, 0, 0, 1, 1]]), tf.one_hot([[0, 0, 0, 1, 1, 1]], 3))
    assert float(dice.result()) == pytest.approx((6 / 7 + 4 / 5) / 2)


def naive_cross_entropy(true, probabilities):
    values = [-np.log(probabilities[index][t]) for index, t in np.ndenumerate(true) if t != 255]
    return np.mean(values)


def test_losses_ignore_255_against_naive_references():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4, 3)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    true = rng.integers(0, 3, (2, 3, 4))
    true[0, 0] = 255
    expected = naive_cross_entropy(true, probabilities)
    assert float(SegmentationCrossEntropy()(true, probabilities)) == pytest.approx(expected, 1e-5)
    assert float(SegmentationCrossEntropy(from_logits=True)(true, logits)) == pytest.approx(
        expected, 1e-5)

    focal = [-(1 - probabilities[i][t]) ** 2 * np.log(probabilities[i][t])
             for i, t in np.ndenumerate(true) if t != 255]
    assert float(FocalLoss()(true, probabilities)) == pytest.approx(np.mean(focal), 1e-5)

    valid = true != 255
    one_hot = np.eye(3)[np.where(valid, true, 0)] * valid[..., None]
    kept = probabilities * valid[..., None]
    dice = (2 * (one_hot * kept).sum((0, 1, 2)) + 1) / (one_hot.sum((0, 1, 2))
                                                        + kept.sum((0, 1, 2)) + 1)
    assert float(DiceLoss()(true, probabilities)) == pytest.approx(1 - dice.mean(), 1e-5)
    assert float(CrossEntropyDice(dice_weight=0.5)(true, probabilities)) == pytest.approx(
        expected + 0.5 * (1 - dice.mean()), 1e-5)


def test_changing_ignored_pixels_changes_nothing():
    rng = np.random.default_rng(2)
    probabilities = tf.nn.softmax(rng.normal(size=(1, 4, 4, 3))).numpy()
    true = rng.integers(0, 3, (1, 4, 4))
    true[0, :2] = 255
    other = probabilities.copy()
    other[0, :2] = [1.0, 0.0, 0.0]
    for loss in (SegmentationCrossEntropy(), DiceLoss(), FocalLoss(), CrossEntropyDice()):
        assert float(loss(true, probabilities)) == pytest.approx(float(loss(true, other)), 1e-6)


def test_losses_and_metrics_serialize():
    for item in (CrossEntropyDice(dice_weight=0.3), FocalLoss(gamma=1.0),
                 SegmentationMeanIoU(4), PixelAccuracy(4)):
        config = keras.saving.serialize_keras_object(item)
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(item)
        assert restored.get_config() == item.get_config()
