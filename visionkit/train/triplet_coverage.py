"""How much of each training batch online mining can use, logged and warned about.

Online triplet mining (`visionkit.train.metric_losses`) forms its triplets inside each
batch: an anchor needs another image of its class (a positive) and an image of another
class (a negative) in the same batch. A batch of one class, or of classes with one image
each (what shuffled batches of a data set with many classes give), has no triplet: its
loss is 0 and nothing is learnt, without any error. `AnchorsWithTriplets` logs the
fraction of anchors that had both (graph code, in the compiled step); `TripletCoverage`
says once, after the first epoch where it is below 1, how much of training was lost.
Batches of P classes x K images (`visionkit.data.class_balanced`) have it at 1.

Example:

>>> import numpy as np
>>> metric = AnchorsWithTriplets()
>>> metric.update_state(np.array([0, 0, 1, 2]), np.zeros((4, 2), "float32"))
>>> float(metric.result())  # anchors 0 and 1 have a positive and a negative
0.5
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import tensorflow as tf

from visionkit.train.metric_losses import class_ids

__all__ = ["AnchorsWithTriplets", "TripletCoverage", "METRIC_NAME"]

METRIC_NAME = "anchors_with_triplets"


@keras.saving.register_keras_serializable(package="visionkit")
class AnchorsWithTriplets(keras.metrics.Mean):
    """Fraction of images whose batch holds a positive and a negative for them.

    Args:
        name: the metric's name. Defaults to "anchors_with_triplets".

    Shapes:
        `y_true` class ids `[B]` (or `[B, 1]`, or one-hot `[B, C]`); `y_pred` embeddings
        `[B, D]` (only their count is read).

    Returns:
        The mean over all images seen, in 0..1.
    """

    def __init__(self, name: str = METRIC_NAME, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = class_ids(y_true, y_pred)
        same = tf.equal(labels[:, None], labels[None, :])
        # Another image of the class (the diagonal is the image itself) and another class.
        has_positive = tf.reduce_sum(tf.cast(same, tf.int32), axis=1) > 1
        has_negative = tf.reduce_any(tf.logical_not(same), axis=1)
        return super().update_state(
            tf.cast(tf.logical_and(has_positive, has_negative), self.dtype))


class TripletCoverage(keras.callbacks.Callback):
    """Warns once per split when some anchors had no triplet in their batch (loss 0).

    Reads `anchors_with_triplets` and `val_anchors_with_triplets` from the epoch's logs
    (see `AnchorsWithTriplets`): below 1 on the train split, those images taught
    nothing; on the validation split, `val_loss` (what checkpoints keep the lowest of)
    leaves them out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.warned: set[str] = set()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for key, split, effect in (
                (METRIC_NAME, "training", "added 0 to the loss. Train on batches of P >= 2 "
                 "classes x K >= 2 images (visionkit.data.class_balanced(data, "
                 "classes_per_batch, images_per_class))"),
                (f"val_{METRIC_NAME}", "validation", "are left out of val_loss, which "
                 "checkpoints and early stopping follow. Give validation batches several "
                 "images of several classes each (a larger or shuffled validation split)")):
            value = (logs or {}).get(key)
            if key in self.warned or value is None or float(value) >= 1.0:
                continue
            self.warned.add(key)
            warnings.warn(
                f"Metric learning, epoch {epoch + 1}: only {float(value):.0%} of the {split} "
                f"images had both another image of their class and an image of another "
                f"class in their batch; the others formed no triplet or pair and {effect}.",
                stacklevel=2)
