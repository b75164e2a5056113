"""Segmentation metrics from a confusion matrix: IoU, Dice, pixel accuracy, ignoring 255.

The confusion matrix counts pixels (rows: true class, columns: predicted class) over
every pixel whose true value is not the ignore value. From it:

- IoU of class c = TP / (TP + FP + FN); mean IoU averages the classes that occur in the
  true or predicted masks (a class with an empty union has no IoU and is left out).
- Dice of class c = 2 TP / (2 TP + FP + FN), averaged the same way.
- pixel accuracy = trace / total.

Example:

>>> import numpy as np
>>> matrix = confusion_matrix(np.array([[0, 1, 1, 255]]), np.array([[0, 1, 0, 1]]), 2)
>>> matrix.tolist()
[[1, 0], [1, 1]]
>>> round(mean_iou(matrix), 4)     # (1/2 + 1/2) / 2
0.5
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.train.losses import IGNORE_INDEX

__all__ = ["confusion_matrix", "iou_per_class", "mean_iou", "dice_per_class", "mean_dice",
           "pixel_accuracy", "confusion_matrix_tf", "SegmentationMeanIoU", "PixelAccuracy",
           "DiceCoefficient"]


def confusion_matrix_tf(y_true: tf.Tensor, y_pred_classes: tf.Tensor, num_classes: int,
                        ignore_index: int = IGNORE_INDEX) -> tf.Tensor:
    """The `[K, K]` int64 confusion matrix of class-id tensors, in graph ops.

    Pixels whose true value is `ignore_index` are left out; so are true values outside
    `0..K-1`.
    """
    y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    y_pred = tf.reshape(tf.cast(y_pred_classes, tf.int64), [-1])
    valid = tf.logical_and(tf.not_equal(y_true, ignore_index),
                           tf.logical_and(y_true >= 0, y_true < num_classes))
    index = tf.boolean_mask(y_true * num_classes + y_pred, valid)
    counts = tf.math.bincount(index, minlength=num_classes * num_classes,
                              maxlength=num_classes * num_classes, dtype=tf.int64)
    return tf.reshape(counts, [num_classes, num_classes])


def confusion_matrix(y_true: Any, y_pred_classes: Any, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """The `[K, K]` confusion matrix (rows true, columns predicted) as NumPy int64.

    Args:
        y_true: true class ids of any shape (`ignore_index` pixels are left out).
        y_pred_classes: predicted class ids, same shape.
        num_classes: `K`.
        ignore_index: the ignore value. Defaults to 255.
    """
    return confusion_matrix_tf(tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred_classes),
                               int(num_classes), ignore_index).numpy()


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix; NaN where the union is empty."""
    matrix = np.asarray(matrix, np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean IoU over the classes with a non-empty union (0.0 if there is none)."""
    values = iou_per_class(matrix)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def dice_per_class(matrix: np.ndarray) -> np.ndarray:
    """Dice (F1) of each class from a confusion matrix; NaN where the class is absent."""
    matrix = np.asarray(matrix, np.float64)
    true_positive = np.diag(matrix)
    total = matrix.sum(axis=0) + matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 2 * true_positive / total, np.nan)


def mean_dice(matrix: np.ndarray) -> float:
    """Mean Dice over the classes present in the true or predicted masks."""
    values = dice_per_class(matrix)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Fraction of the counted pixels whose class is right (0.0 for no pixels)."""
    matrix = np.asarray(matrix, np.float64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


class _ConfusionMetric(keras.metrics.Metric):
    """Accumulates the confusion matrix of `argmax(y_pred)` against `y_true`.

    Mean IoU is Keras's `MeanIoU`; Keras has no Dice metric and its
    `SparseCategoricalAccuracy` cannot leave a mask value out, so Dice and pixel accuracy
    keep this matrix."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = self.add_variable(shape=(self.num_classes, self.num_classes),
                                        initializer="zeros", dtype="float32", name="matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # NumPy arrays, lists and tensors alike (NumPy shapes have no `.rank`).
        y_pred = tf.convert_to_tensor(y_pred)
        predicted = tf.argmax(y_pred, axis=-1)
        y_true = tf.cast(tf.convert_to_tensor(y_true), tf.int64)
        if y_true.shape.rank == y_pred.shape.rank:
            y_true = tf.squeeze(y_true, -1)
        counts = confusion_matrix_tf(y_true, predicted, self.num_classes, self.ignore_index)
        self.matrix.assign_add(tf.cast(counts, tf.float32))

    def reset_state(self):
        self.matrix.assign(tf.zeros_like(self.matrix))

    def _per_class(self, numerator, denominator):
        present = denominator > 0
        values = tf.math.divide_no_nan(numerator, denominator)
        count = tf.reduce_sum(tf.cast(present, tf.float32))
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, values, 0.0)), count)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes,
                "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="visionkit")
class SegmentationMeanIoU(keras.metrics.MeanIoU):
    """Mean IoU over the classes present, from `argmax(y_pred)`; ignores 255.

    Keras's own `MeanIoU(num_classes, ignore_class=255, sparse_y_pred=False)` (a class
    with an empty union is left out of the mean), under visionkit's name and defaults so
    that `.keras` files saved with this metric keep loading.
    `tests/train/test_keras_equivalents.py` checks it against `mean_iou` of a NumPy
    confusion matrix.

    Args:
        num_classes: number of classes.
        ignore_index: mask value to leave out. Defaults to 255.
        name: the metric's name. Defaults to "mean_iou".
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX,
                 name: str = "mean_iou", **kwargs: Any) -> None:
        kwargs.pop("ignore_class", None)
        kwargs.pop("sparse_y_pred", None)
        kwargs.pop("sparse_y_true", None)
        kwargs.pop("axis", None)
        super().__init__(int(num_classes), name=name, ignore_class=int(ignore_index),
                         sparse_y_pred=False, **kwargs)
        self.ignore_index = int(ignore_index)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("ignore_class", None)
        config.pop("sparse_y_pred", None)
        return {**config, "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="visionkit")
class DiceCoefficient(_ConfusionMetric):
    """Mean Dice over the classes present, from `argmax(y_pred)`; ignores 255."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX,
                 name: str = "dice", **kwargs: Any) -> None:
        super().__init__(num_classes, ignore_index, name=name, **kwargs)

    def result(self):
        diagonal = tf.linalg.diag_part(self.matrix)
        total = tf.reduce_sum(self.matrix, 0) + tf.reduce_sum(self.matrix, 1)
        return self._per_class(2.0 * diagonal, total)


@keras.saving.register_keras_serializable(package="visionkit")
class PixelAccuracy(_ConfusionMetric):
    """Fraction of non-ignored pixels whose `argmax(y_pred)` is right."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX,
                 name: str = "pixel_accuracy", **kwargs: Any) -> None:
        super().__init__(num_classes, ignore_index, name=name, **kwargs)

    def result(self):
        return tf.math.divide_no_nan(tf.linalg.trace(self.matrix),
                                     tf.reduce_sum(self.matrix))
