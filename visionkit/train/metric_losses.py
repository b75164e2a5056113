"""Metric-learning losses with online mining: contrastive and triplet (batch-hard, semi-hard).

Every loss takes the batch's class labels `y_true` int `[B]` and its embeddings `y_pred`
float `[B, D]` (L2-normalised by the `siamese` model) and forms its pairs or triplets
inside the batch ("online"), so a batch of P classes with K images each (see
`visionkit.data.class_balanced`) holds every pair the loss needs. Distances are
Euclidean. Neither Keras 3, keras-cv 0.9 nor keras-hub ships these losses (keras-cv's
contrastive module is SimCLR's NT-Xent, a self-supervised loss without labels);
`tensorflow_addons.losses.TripletSemiHardLoss` / `TripletHardLoss`, whose choices the
semi-hard and batch-hard miners here follow, do not run on Keras 3.

References:
    - [Dimensionality Reduction by Learning an Invariant Mapping](
      https://doi.org/10.1109/CVPR.2006.100) (Hadsell, Chopra & LeCun, CVPR 2006)
    - [FaceNet: A Unified Embedding for Face Recognition and Clustering](
      https://arxiv.org/abs/1503.03832) (Schroff, Kalenichenko & Philbin, CVPR 2015)
    - [In Defense of the Triplet Loss for Person Re-Identification](
      https://arxiv.org/abs/1703.07737) (Hermans, Beyer & Leibe, 2017)

Example:

>>> import numpy as np
>>> labels = np.array([0, 0, 1, 1])
>>> embeddings = np.array([[0., 0.], [0., 1.], [3., 0.], [3., 1.]], "float32")
>>> float(TripletLoss(margin=1.0, mining="batch_hard")(labels, embeddings))
0.0
>>> anchors, positives, negatives = mine_triplets(labels, embeddings, "batch_hard")
>>> anchors.tolist(), positives.tolist(), negatives.tolist()
([0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1])
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["ContrastiveLoss", "MINING", "TripletLoss", "class_ids", "mine_triplets",
           "pairwise_distances"]

MINING = ("batch_hard", "semi_hard")

# Squared distances are clamped here before the square root: its gradient at 0 is
# infinite (an image's distance to itself, or two identical embeddings).
_MIN_SQUARED_DISTANCE = 1e-12


def pairwise_distances(embeddings: Any) -> tf.Tensor:
    """Euclidean distances between all rows of `embeddings` `[B, D]` -> float32 `[B, B]`.

    Computed as `|a|^2 - 2 a.b + |b|^2` (one matrix product), clamped at
    1e-12 before the square root so the gradient stays finite; the diagonal is exactly 0.
    """
    embeddings = tf.cast(embeddings, tf.float32)
    squared_norms = tf.reduce_sum(tf.square(embeddings), axis=-1)
    squared = (squared_norms[:, None] - 2.0 * tf.matmul(embeddings, embeddings,
                                                        transpose_b=True)
               + squared_norms[None, :])
    distances = tf.sqrt(tf.maximum(squared, _MIN_SQUARED_DISTANCE))
    return distances * (1.0 - tf.eye(tf.shape(embeddings)[0]))


def class_ids(labels: Any, embeddings: Any) -> tf.Tensor:
    """The batch's class ids `[B]` from int (any width), float, `[B, 1]` or one-hot labels.

    One-hot (or probability) rows `[B, C]` with `C > 1` become their argmax. Raises
    ValueError naming `y_true` when the count of labels differs from the embeddings'
    (when both are known while tracing).
    """
    labels = tf.convert_to_tensor(labels)
    embeddings = tf.convert_to_tensor(embeddings)
    if labels.shape.rank == 2 and (labels.shape[-1] or 1) > 1:
        labels = tf.argmax(labels, axis=-1)
    elif labels.shape.rank is not None and labels.shape.rank > 1 and \
            all(d == 1 for d in labels.shape[1:]):
        labels = tf.reshape(labels, [-1])
    elif labels.shape.rank is not None and labels.shape.rank != 1:
        raise ValueError(f"Expected y_true as class ids [B], [B, 1] or one-hot [B, C]; "
                         f"received shape {tuple(labels.shape)}.")
    rows, count = embeddings.shape[0], labels.shape[0]
    if embeddings.shape.rank is not None and embeddings.shape.rank != 2:
        raise ValueError(f"Expected y_pred as embeddings [B, D]; received shape "
                         f"{tuple(embeddings.shape)}.")
    if rows is not None and count is not None and rows != count:
        raise ValueError(f"Expected one label per embedding ({rows}); received y_true with "
                         f"{count} labels (shape {tuple(labels.shape)}).")
    return tf.cast(labels, tf.int64)


def _warn_without_pairs(valid: tf.Tensor, labels: tf.Tensor, loss: str) -> None:
    """Says (when run eagerly) that a batch gave the loss nothing to learn from."""
    if tf.executing_eagerly() and not bool(tf.reduce_any(valid)):
        classes = np.unique(np.asarray(labels))
        warnings.warn(f"{loss}: the batch of {int(labels.shape[0])} images has "
                      f"{len(classes)} class(es) ({classes[:5].tolist()}"
                      f"{' ...' if len(classes) > 5 else ''}): no anchor has both a positive "
                      f"and a negative, so the loss is 0 and nothing is learnt. Use batches of "
                      f"P >= 2 classes x K >= 2 images (visionkit.data.class_balanced).",
                      stacklevel=3)


def _label_masks(labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`(positive, negative)` bool `[B, B]`: same label (not itself), other label."""
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    return tf.logical_and(same, not_self), tf.logical_not(same)


def _check_mining(mining: str) -> str:
    if mining not in MINING:
        raise ValueError(f"Expected mining to be one of {MINING}; received mining={mining!r}.")
    return mining


def _batch_hard(distances: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor):
    """Per anchor: its farthest positive and nearest negative (Hermans et al. 2017).

    Returns `(positive_index [B], negative_index [B], valid [B])`; an anchor without a
    positive or a negative in the batch is not valid. Static shapes (XLA compiles it).
    """
    large = tf.reduce_max(distances) + 1.0
    positive_index = tf.argmax(tf.where(positive, distances, -1.0), axis=1,
                               output_type=tf.int32)
    negative_index = tf.argmin(tf.where(negative, distances, large), axis=1,
                               output_type=tf.int32)
    valid = tf.logical_and(tf.reduce_any(positive, axis=1), tf.reduce_any(negative, axis=1))
    return positive_index, negative_index, valid


def _semi_hard(distances: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor):
    """Per anchor-positive pair: the nearest negative farther than the positive, or, when
    every negative is nearer, the farthest negative (Schroff et al. 2015; the choice of
    tensorflow_addons' TripletSemiHardLoss).

    Returns `(negative_index [B, B], valid [B, B])` for the pair (anchor = row, positive
    = column); a pair is valid when both share a class (anchor != positive) and the
    anchor has a negative. Static shapes (XLA compiles it); memory grows as B^3.
    """
    large = tf.reduce_max(distances) + 1.0
    anchor_negative = distances[:, None, :]                               # [a, 1, n]
    farther = tf.logical_and(negative[:, None, :],
                             anchor_negative > distances[:, :, None])     # [a, p, n]
    nearest_farther = tf.argmin(tf.where(farther, anchor_negative, large), axis=2,
                                output_type=tf.int32)                     # [a, p]
    farthest = tf.argmax(tf.where(negative, distances, -1.0), axis=1,
                         output_type=tf.int32)                            # [a]
    negative_index = tf.where(tf.reduce_any(farther, axis=2), nearest_farther,
                              farthest[:, None])
    valid = tf.logical_and(positive, tf.reduce_any(negative, axis=1)[:, None])
    return negative_index, valid


def _triplet_distances(labels: Any, embeddings: Any, mining: str):
    """The mined triplets of a batch, with static shapes.

    Returns `(anchor-positive distances, anchor-negative distances, valid, (positive
    index, negative index))`, each `[B]` (batch-hard: one triplet per anchor) or `[B, B]`
    (semi-hard: one per anchor-positive pair, anchor = row).
    """
    labels = class_ids(labels, embeddings)
    distances = pairwise_distances(embeddings)
    positive, negative = _label_masks(labels)
    if mining == "batch_hard":
        positive_index, negative_index, valid = _batch_hard(distances, positive, negative)
        anchor_positive = tf.gather(distances, positive_index, batch_dims=1)
    else:
        negative_index, valid = _semi_hard(distances, positive, negative)
        positive_index = tf.broadcast_to(tf.range(tf.shape(distances)[0]),
                                         tf.shape(distances))
        anchor_positive = distances
    anchor_negative = tf.gather(distances, negative_index, batch_dims=1)
    _warn_without_pairs(valid, labels, f"TripletLoss(mining={mining!r})")
    return anchor_positive, anchor_negative, valid, (positive_index, negative_index)


def mine_triplets(labels: Any, embeddings: Any, mining: str = "batch_hard"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The triplets `TripletLoss` trains on for one batch.

    Args:
        labels: class ids `[B]` (any int or float dtype, or `[B, 1]`) or one-hot `[B, C]`.
        embeddings: float `[B, D]`.
        mining: "batch_hard" (one triplet per anchor: its farthest positive and nearest
            negative; Hermans et al. 2017) or "semi_hard" (one triplet per anchor-positive
            pair: the nearest negative farther than the positive, or the farthest negative
            when none is; Schroff et al. 2015). Defaults to "batch_hard".

    Returns:
        `(anchors, positives, negatives)`: int32 NumPy arrays `[T]` of batch indices.
        Anchors without a positive or a negative in the batch form no triplet.

    Raises:
        ValueError: for an unknown `mining`, or labels that do not match the embeddings.
    """
    *_, valid, (positive_index, negative_index) = _triplet_distances(
        labels, embeddings, _check_mining(mining))
    valid = np.asarray(valid)
    anchors = np.nonzero(valid)[0]
    return (anchors.astype(np.int32), np.asarray(positive_index)[valid].astype(np.int32),
            np.asarray(negative_index)[valid].astype(np.int32))


@keras.saving.register_keras_serializable(package="visionkit")
class TripletLoss(keras.losses.Loss):
    """Triplet loss with online mining: mean of `max(d(a,p) - d(a,n) + margin, 0)`.

    The batch's triplets come from `mine_triplets` (batch-hard or semi-hard); the loss is
    the mean over them (0 for a batch without any: a batch of one class, or of classes
    with one image each; said in a warning when called eagerly). Distances are Euclidean between the
    embeddings. The loss is one value per batch, so sample weights do not apply.

    Args:
        margin: the margin `alpha` between positive and negative distances. Defaults to
            0.2 (FaceNet's, for unit-length embeddings).
        mining: "batch_hard" or "semi_hard" (see `mine_triplets`). Defaults to
            "batch_hard".
        name: the loss's name. Defaults to "triplet_loss".

    Shapes:
        `y_true` class ids `[B]` (int of any width or float; or `[B, 1]`) or one-hot
        `[B, C]`; `y_pred` float `[B, D]` embeddings.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: for a negative margin or an unknown `mining`; when called, for labels
            whose count differs from the embeddings'.
    """

    def __init__(self, margin: float = 0.2, mining: str = "batch_hard",
                 name: str = "triplet_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if float(margin) < 0:
            raise ValueError(f"Expected margin >= 0; received margin={margin!r}.")
        self.margin = float(margin)
        self.mining = _check_mining(mining)

    def call(self, y_true, y_pred):
        anchor_positive, anchor_negative, valid, _ = _triplet_distances(
            y_true, y_pred, self.mining)
        valid = tf.cast(valid, tf.float32)
        losses = tf.nn.relu(anchor_positive - anchor_negative + self.margin) * valid
        return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.reduce_sum(valid))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(margin=self.margin, mining=self.mining)
        return config


@keras.saving.register_keras_serializable(package="visionkit")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss over every pair of the batch (Hadsell et al. 2006, eq. 4).

    For each pair `i < j` with distance `d`: `d^2 / 2` when the two share a class,
    `max(margin - d, 0)^2 / 2` otherwise; the loss is the mean over all pairs. Distances
    are Euclidean between the embeddings. One value per batch, so sample weights do not
    apply.

    Args:
        margin: dissimilar pairs farther apart than this cost nothing. Defaults to 1.0
            (for unit-length embeddings, whose distances lie in 0..2).
        name: the loss's name. Defaults to "contrastive_loss".

    Shapes:
        `y_true` class ids `[B]` (int of any width or float; or `[B, 1]`) or one-hot
        `[B, C]`; `y_pred` float `[B, D]` embeddings.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: for a margin that is not positive; when called, for labels whose
            count differs from the embeddings'.
    """

    def __init__(self, margin: float = 1.0, name: str = "contrastive_loss",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if float(margin) <= 0:
            raise ValueError(f"Expected margin > 0; received margin={margin!r}.")
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        labels = class_ids(y_true, y_pred)
        distances = pairwise_distances(y_pred)
        positive, negative = _label_masks(labels)
        _warn_without_pairs(tf.reduce_any(negative) | tf.reduce_any(positive), labels,
                            "ContrastiveLoss")
        upper = tf.linalg.band_part(tf.ones_like(distances), 0, -1) - tf.eye(
            tf.shape(distances)[0])
        similar = 0.5 * tf.square(distances)
        dissimilar = 0.5 * tf.square(tf.nn.relu(self.margin - distances))
        per_pair = tf.where(positive, similar, tf.where(negative, dissimilar, 0.0)) * upper
        return tf.math.divide_no_nan(tf.reduce_sum(per_pair), tf.reduce_sum(upper))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(margin=self.margin)
        return config
