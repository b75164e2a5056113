"""Class imbalance: class-weighted cross-entropy and class-balanced sampling.

Two `fit` options, for classification (one label per image) and segmentation (one per
pixel, 255 ignored):

- `class_weight`: `"balanced"` (weights `n / (k * count_c)`, scikit-learn's
  `compute_class_weight("balanced")`, counted on the training split: images for
  classification, pixels for segmentation), a dict `{class id or name: weight}` (absent
  classes weigh 1) or a sequence of `k` weights. The loss becomes the weighted mean
  `sum_i w[y_i] * CE_i / sum_i w[y_i]` over the batch's examples (or non-ignored pixels),
  the normalisation PyTorch's `CrossEntropyLoss(weight=...)` uses, so the loss's scale
  does not depend on the weights.
- `sampling="balanced"`: each training example is drawn from a class chosen uniformly
  (class-aware sampling, Shen et al. 2016, "Relay Backpropagation"); a segmentation
  image belongs to the rarest class (by pixel count) it shows. An epoch draws as many
  examples as the split holds, with replacement.

Example:

>>> import numpy as np
>>> resolve_class_weights("balanced", np.array([0, 0, 0, 1]), ["a", "b"]).tolist()
[0.6666666666666666, 2.0]
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.class_counts import class_counts
from visionkit.train.losses import IGNORE_INDEX
from visionkit.vocabulary import ends_in_probabilities

__all__ = ["ClassWeightedCrossEntropy", "resolve_class_weights", "class_counts",
           "balanced_sampling", "class_weighted_loss", "apply_sampling", "SAMPLINGS"]

logger = logging.getLogger(__name__)

SAMPLINGS = (None, "balanced")
# Shuffle buffer of each class's stream (as the pipeline's default buffer).
_SHUFFLE_BUFFER = 4096


@keras.saving.register_keras_serializable(package="visionkit")
class ClassWeightedCrossEntropy(keras.losses.Loss):
    """Sparse cross-entropy weighted per class: `sum w[y] CE / sum w[y]`, ignoring 255.

    Args:
        class_weights: `k` non-negative weights, one per class.
        from_logits: whether `y_pred` are logits. Defaults to False.
        ignore_index: the label value to leave out. Defaults to 255.
        name: the loss's name. Defaults to "loss".

    Shapes:
        `y_true` int `[B]` (classification) or `[B, H, W]` (segmentation); `y_pred`
        `[..., k]` probabilities or logits.

    Example:

    >>> import numpy as np
    >>> loss = ClassWeightedCrossEntropy([2.0, 0.5])
    >>> value = loss(np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]], "float32"))
    >>> round(float(value), 4)  # (2 * -log .5 + .5 * -log .8) / 2.5
    0.5991
    """

    def __init__(self, class_weights: Sequence[float], from_logits: bool = False,
                 ignore_index: int = IGNORE_INDEX, name: str = "loss", **kwargs: Any) -> None:
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
        self.class_weights = [float(w) for w in class_weights]
        self.from_logits = bool(from_logits)
        self.ignore_index = int(ignore_index)

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.int32)
        if y_true.shape.rank == y_pred.shape.rank:
            y_true = tf.squeeze(y_true, -1)
        valid = tf.not_equal(y_true, self.ignore_index)
        safe = tf.where(valid, y_true, tf.zeros_like(y_true))
        per_example = keras.losses.sparse_categorical_crossentropy(
            safe, y_pred, from_logits=self.from_logits)
        weights = tf.gather(tf.constant(self.class_weights, tf.float32), safe)
        weights = weights * tf.cast(valid, tf.float32)
        return tf.math.divide_no_nan(tf.reduce_sum(weights * per_example),
                                     tf.reduce_sum(weights))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights,
                "from_logits": self.from_logits, "ignore_index": self.ignore_index}


def resolve_class_weights(class_weight: str | Mapping | Sequence[float],
                          labels_or_counts: np.ndarray | None,
                          class_names: Sequence[str], counts: bool = False) -> np.ndarray:
    """The per-class weight vector `[k]` for a `class_weight` option.

    Args:
        class_weight: "balanced", a dict `{class id or name: weight}` or `k` weights.
        labels_or_counts: the training labels (or, with `counts=True`, per-class
            counts) that "balanced" is computed from.
        class_names: the data's class names (`k` of them).
        counts: whether `labels_or_counts` are counts.

    Raises:
        ValueError: for an unknown option, a class not in `class_names`, a wrong
            number of weights or a negative weight.
    """
    names = list(class_names)
    k = len(names)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"Unknown class_weight {class_weight!r}; expected 'balanced', a "
                             "dict {class: weight} or a sequence of weights.")
        from sklearn.utils.class_weight import compute_class_weight

        if counts:
            tallies = np.asarray(labels_or_counts, np.int64)
            labels = np.repeat(np.arange(k), tallies)
        else:
            labels = np.asarray(labels_or_counts).ravel()
        present = np.unique(labels)
        weights = np.ones(k)
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
        missing = sorted(set(range(k)) - set(present.tolist()))
        if missing:
            logger.warning("class_weight='balanced': %d class(es) never occur in the training "
                           "split and keep weight 1: %s", len(missing),
                           [names[i] for i in missing][:10])
        return weights
    if isinstance(class_weight, Mapping):
        weights = np.ones(k)
        for key, value in class_weight.items():
            index = names.index(key) if isinstance(key, str) and key in names else key
            if not isinstance(index, (int, np.integer)) or not 0 <= int(index) < k:
                raise ValueError(f"class_weight names class {key!r}, which is not one of the "
                                 f"data's {k} classes {names[:10]}.")
            weights[int(index)] = float(value)
    else:
        weights = np.asarray(list(class_weight), np.float64)
        if weights.shape != (k,):
            raise ValueError(f"Expected {k} class weights (one per class); received "
                             f"{len(weights)}.")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"Expected finite non-negative class weights; received "
                         f"{weights.tolist()}.")
    return weights


def balanced_sampling(data: Any, seed: int | None = None) -> Any:
    """A copy of `data` whose training split draws examples class-balanced.

    Each example is drawn from a class chosen uniformly (among the classes that occur),
    then uniformly among that class's examples (with replacement); a segmentation image
    belongs to the rarest class (by pixel count over the split) it shows. An epoch has
    as many examples as the split. The draws change every epoch; with a seed they
    repeat from run to run. The cache is turned off (it would freeze one draw).

    Raises:
        ValueError: when the data set has a single class in its training split.
    """
    key = data.task.target_key
    counts = class_counts(data)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise ValueError(f"sampling='balanced' needs at least two classes in the training "
                         f"split; it holds {[data.class_names[i] for i in present]}.")
    records = data.train_records is not None and not data.cache and \
        key in data.train_records.element_spec
    source = data.train_records if records else data.train_examples
    rarity = tf.constant(np.where(counts > 0, counts, np.iinfo(np.int64).max), tf.int64)

    def group(example) -> tf.Tensor:
        labels = tf.reshape(tf.cast(example[key], tf.int64), [-1])
        labels = tf.boolean_mask(labels, (labels >= 0) & (labels < data.num_classes))
        shown = tf.math.bincount(labels, minlength=data.num_classes,
                                 maxlength=data.num_classes, dtype=tf.int64) > 0
        return tf.argmin(tf.where(shown, rarity, np.iinfo(np.int64).max))

    streams = [source.filter(lambda example, c=int(c): tf.equal(group(example), c))
               .shuffle(min(data.train_size, _SHUFFLE_BUFFER), seed=seed,
                        reshuffle_each_iteration=True).repeat()
               for c in present]
    sampled = tf.data.Dataset.sample_from_datasets(
        streams, weights=[1.0 / len(present)] * len(present), seed=seed,
        rerandomize_each_iteration=True).take(data.train_size)
    if records:
        return dataclasses.replace(data, train_records=sampled)
    return dataclasses.replace(data, train_examples=sampled, train_records=None, decode=None,
                               cache=False)


def _check_task(data: Any, option: str) -> None:
    if getattr(data.task, "output_rank", None) not in (2, 4) or \
            getattr(data.task, "multi_label", False):
        raise ValueError(f"{option} applies to single-label classification and segmentation; "
                         f"received a {data.task.name!r} data set.")


def class_weighted_loss(model: keras.Model, data: Any,
                        class_weight: str | Mapping | Sequence[float]) -> ClassWeightedCrossEntropy:
    """The task's cross-entropy weighted per class for `fit(class_weight=...)`.

    "balanced" counts the training split (images, or pixels for segmentation).

    Raises:
        ValueError: for a task other than classification or segmentation, or a bad
            `class_weight` (see `resolve_class_weights`).
    """
    _check_task(data, "class_weight")
    if isinstance(class_weight, str):
        weights = resolve_class_weights(class_weight, class_counts(data), data.class_names,
                                        counts=True)
    else:
        weights = resolve_class_weights(class_weight, None, data.class_names)
    return ClassWeightedCrossEntropy(weights.tolist(),
                                     from_logits=not ends_in_probabilities(model))


def apply_sampling(data: Any, sampling: str | None, seed: int | None = None) -> Any:
    """`data` with `fit(sampling=...)` applied ("balanced" or None).

    Raises:
        ValueError: for an unknown sampling or a task it does not apply to.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"Unknown sampling {sampling!r}; expected one of {SAMPLINGS}.")
    if sampling is None:
        return data
    _check_task(data, "sampling")
    return balanced_sampling(data, seed=seed if seed is not None else data.seed)
