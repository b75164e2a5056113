"""Segmentation losses that respect the ignore value (255) of the masks.

The cross-entropy is Keras's own (`ignore_class`); Keras has no Dice or sparse focal
loss that leaves a mask value out, so those two are visionkit's.

All take `y_true` int class ids `[B, H, W]` (255 = ignore) and `y_pred` class scores
`[B, H, W, K]` (probabilities, or logits with `from_logits=True`), and average over the
pixels that are not ignored.

Reference:
    - [Focal Loss for Dense Object Detection](https://arxiv.org/abs/1708.02002)
      (Lin et al., ICCV 2017)
    - [V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
      Segmentation](https://arxiv.org/abs/1606.04797) (Milletari et al., 3DV 2016)

Example:

>>> import numpy as np
>>> y_true = np.array([[[0, 1, 255]]])
>>> y_pred = np.array([[[[0.9, 0.1], [0.2, 0.8], [0.0, 1.0]]]], np.float32)
>>> round(float(SegmentationCrossEntropy()(y_true, y_pred)), 4)   # ignores the 3rd pixel
0.1643
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.vocabulary import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "SegmentationCrossEntropy", "DiceLoss", "FocalLoss",
           "CrossEntropyDice"]

# Keeps probabilities away from 0 before logarithms.
_EPSILON = 1e-7


def _prepare(y_true, y_pred, from_logits: bool, ignore_index: int):
    """Returns (safe class ids, valid mask float32, probabilities float32)."""
    y_pred = tf.cast(y_pred, tf.float32)
    y_true = tf.cast(y_true, tf.int32)
    if y_true.shape.rank == y_pred.shape.rank:
        y_true = tf.squeeze(y_true, axis=-1)
    valid = tf.not_equal(y_true, ignore_index)
    safe = tf.where(valid, y_true, tf.zeros_like(y_true))
    probabilities = tf.nn.softmax(y_pred) if from_logits else y_pred
    return safe, tf.cast(valid, tf.float32), probabilities


def _masked_mean(values, valid):
    return tf.reduce_sum(values * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


class _SegmentationLoss(keras.losses.Loss):
    def __init__(self, from_logits: bool = False, ignore_index: int = IGNORE_INDEX,
                 name: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
        self.from_logits = bool(from_logits)
        self.ignore_index = int(ignore_index)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="visionkit")
class SegmentationCrossEntropy(keras.losses.SparseCategoricalCrossentropy):
    """Sparse categorical cross-entropy averaged over the pixels that are not ignored.

    Keras's own `SparseCategoricalCrossentropy(ignore_class=255)` (the ignored pixels are
    masked out and the mean is taken over the others; a batch with every pixel ignored
    gives 0), under visionkit's name and defaults so that `.keras` files saved with this
    loss keep loading. `tests/train/test_keras_equivalents.py` checks it against a naive
    per-pixel reference.

    Args:
        from_logits: whether `y_pred` are logits. Defaults to False.
        ignore_index: mask value to leave out. Defaults to 255.
        name: the loss's name. Defaults to "segmentation_cross_entropy".
    """

    def __init__(self, from_logits: bool = False, ignore_index: int = IGNORE_INDEX,
                 name: str = "segmentation_cross_entropy", **kwargs: Any) -> None:
        kwargs.pop("reduction", None)
        kwargs.pop("ignore_class", None)
        kwargs.pop("axis", None)
        super().__init__(from_logits=bool(from_logits), ignore_class=int(ignore_index),
                         reduction="sum_over_batch_size", name=name, **kwargs)
        self.ignore_index = int(ignore_index)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("ignore_class", None)
        return {**config, "ignore_index": self.ignore_index}


def _soft_dice_loss(safe, valid, probabilities, smooth: float):
    num_classes = tf.shape(probabilities)[-1]
    one_hot = tf.one_hot(safe, num_classes) * valid[..., tf.newaxis]
    probabilities = probabilities * valid[..., tf.newaxis]
    axes = tf.range(tf.rank(probabilities) - 1)
    intersection = tf.reduce_sum(one_hot * probabilities, axis=axes)
    total = tf.reduce_sum(one_hot, axis=axes) + tf.reduce_sum(probabilities, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - tf.reduce_mean(dice)


@keras.saving.register_keras_serializable(package="visionkit")
class DiceLoss(_SegmentationLoss):
    """Soft Dice loss, 1 - mean over classes of `(2|P∩T| + s) / (|P| + |T| + s)`.

    Computed over the whole batch on the pixels that are not ignored (Milletari et al.
    2016, with the smoothing term `s`).

    Args:
        from_logits: whether `y_pred` are logits. Defaults to False.
        ignore_index: mask value to leave out. Defaults to 255.
        smooth: the smoothing term `s`. Defaults to 1.0.
        name: the loss's name. Defaults to "dice_loss".
    """

    def __init__(self, from_logits: bool = False, ignore_index: int = IGNORE_INDEX,
                 smooth: float = 1.0, name: str = "dice_loss", **kwargs: Any) -> None:
        super().__init__(from_logits, ignore_index, name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        safe, valid, probabilities = _prepare(y_true, y_pred, self.from_logits,
                                              self.ignore_index)
        return _soft_dice_loss(safe, valid, probabilities, self.smooth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="visionkit")
class FocalLoss(_SegmentationLoss):
    """Focal loss `-(1 - p_t)^gamma log p_t` per pixel (Lin et al. 2017), ignoring 255.

    Args:
        from_logits: whether `y_pred` are logits. Defaults to False.
        ignore_index: mask value to leave out. Defaults to 255.
        gamma: the focusing parameter. Defaults to 2.0 (the paper's choice).
        name: the loss's name. Defaults to "focal_loss".
    """

    def __init__(self, from_logits: bool = False, ignore_index: int = IGNORE_INDEX,
                 gamma: float = 2.0, name: str = "focal_loss", **kwargs: Any) -> None:
        super().__init__(from_logits, ignore_index, name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        safe, valid, probabilities = _prepare(y_true, y_pred, self.from_logits,
                                              self.ignore_index)
        true_probability = tf.gather(probabilities, safe[..., tf.newaxis], batch_dims=safe.shape.rank)
        true_probability = tf.clip_by_value(tf.squeeze(true_probability, -1), _EPSILON, 1.0)
        per_pixel = -tf.pow(1.0 - true_probability, self.gamma) * tf.math.log(true_probability)
        return _masked_mean(per_pixel, valid)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="visionkit")
class CrossEntropyDice(_SegmentationLoss):
    """Cross-entropy plus `dice_weight` times the Dice loss, both ignoring 255.

    Args:
        from_logits: whether `y_pred` are logits. Defaults to False.
        ignore_index: mask value to leave out. Defaults to 255.
        dice_weight: weight of the Dice term. Defaults to 1.0.
        smooth: Dice smoothing term. Defaults to 1.0.
        name: the loss's name. Defaults to "cross_entropy_dice".
    """

    def __init__(self, from_logits: bool = False, ignore_index: int = IGNORE_INDEX,
                 dice_weight: float = 1.0, smooth: float = 1.0,
                 name: str = "cross_entropy_dice", **kwargs: Any) -> None:
        super().__init__(from_logits, ignore_index, name=name, **kwargs)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        safe, valid, probabilities = _prepare(y_true, y_pred, self.from_logits,
                                              self.ignore_index)
        per_pixel = keras.losses.sparse_categorical_crossentropy(
            safe, tf.cast(y_pred, tf.float32), from_logits=self.from_logits)
        return (_masked_mean(per_pixel, valid)
                + self.dice_weight * _soft_dice_loss(safe, valid, probabilities, self.smooth))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dice_weight": self.dice_weight,
                "smooth": self.smooth}
