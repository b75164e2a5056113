"""Class-balanced P x K batches for metric learning, from any classification `Data`.

Online triplet mining needs positives and negatives in every batch. The usual sampler
(Hermans et al. 2017, "In Defense of the Triplet Loss", section 3.1: "randomly sampling
P classes, and then randomly sampling K images of each class") draws P distinct classes
per batch and K images of each. `class_balanced` turns a classification `Data` into
an "embedding" `Data` whose train split yields such batches; validation keeps its fixed
order (its evaluation reads every image).

Each class's images come from its own shuffled stream, cut into groups of K within
each pass, so a class with at least K images gives K distinct images to a batch; a
class with fewer repeats some (said in a warning), and a class with one image can give
no positive pair (said too). Cheap records are sampled before decoding when the source has them. With a seed,
the batches repeat from run to run.

Example:

>>> import visionkit as vk
>>> import numpy as np
>>> data = vk.data.digits(image_size=(8, 8), seed=0).take(200, 40)
>>> balanced = class_balanced(data, classes_per_batch=4, images_per_class=3)
>>> images, labels = next(iter(balanced.train))
>>> images.shape[0], balanced.task.name, np.unique(labels, return_counts=True)[1].tolist()
(12, 'embedding', [3, 3, 3, 3])
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.class_counts import class_counts
from visionkit.vocabulary import get_task

__all__ = ["class_balanced"]

# Shuffle buffer of each class's stream (as the pipeline's default buffer).
_SHUFFLE_BUFFER = 4096
_EXAMPLES_SHOWN = 5


def _names(data: Any, class_ids: np.ndarray) -> str:
    shown = [data.class_names[i] for i in class_ids[:_EXAMPLES_SHOWN]]
    return ", ".join(repr(n) for n in shown) + (" ..." if len(class_ids) > _EXAMPLES_SHOWN
                                                 else "")


def class_balanced(data: Any, classes_per_batch: int = 8, images_per_class: int = 4,
                   steps_per_epoch: int | None = None, seed: int | None = None) -> Any:
    """A copy of a classification `Data` whose train batches hold P classes x K images.

    Args:
        data: a classification `visionkit.data.Data` (single-label).
        classes_per_batch: P, distinct classes per batch (at least 2, so every batch has
            negatives). Defaults to 8.
        images_per_class: K, images per class per batch (at least 2, so every anchor has
            a positive). Defaults to 4.
        steps_per_epoch: batches per epoch. Defaults to the training images divided by
            P x K (about one pass), at least 1.
        seed: seed of the class choice and the per-class shuffles. Defaults to the
            data's seed.

    Shapes:
        Train batches: images float32 `[P*K, H, W, C]`, labels int32 `[P*K]` (K
        consecutive labels per class).

    Returns:
        A `Data` of task "embedding" with `batch_size` P x K. Validation and test
        splits are unchanged (batched by P x K, in order). The data's augmentation still
        applies to the train split.

    Raises:
        ValueError: for a data set that is not single-label classification, P or K below
            2, or fewer than P classes with images in the training split.
    """
    if not get_task(data.task).single_label:
        raise ValueError(f"Expected a single-label classification data set; received a "
                         f"{getattr(data.task, 'name', type(data).__name__)!r} data set.")
    for name, value in (("classes_per_batch", classes_per_batch),
                        ("images_per_class", images_per_class)):
        if isinstance(value, bool) or int(value) != value or int(value) < 2:
            raise ValueError(f"Expected {name} as an integer >= 2; received {name}={value!r}.")
    classes_per_batch, images_per_class = int(classes_per_batch), int(images_per_class)
    seed = data.seed if seed is None else int(seed)
    counts = class_counts(data)
    present = np.flatnonzero(counts)
    if len(present) < classes_per_batch:
        raise ValueError(
            f"classes_per_batch={classes_per_batch} needs at least that many classes with "
            f"training images; the training split has {len(present)} "
            f"({_names(data, present)}).")
    single = present[counts[present] < 2]
    if len(single):
        warnings.warn(f"class_balanced: {len(single)} classes have a single training image "
                      f"and give no positive pair ({_names(data, single)}).", stacklevel=2)
    few = present[(counts[present] >= 2) & (counts[present] < images_per_class)]
    if len(few):
        warnings.warn(f"class_balanced: {len(few)} classes have fewer than "
                      f"images_per_class={images_per_class} training images; their images "
                      f"repeat within a batch ({_names(data, few)}).", stacklevel=2)

    batch_size = classes_per_batch * images_per_class
    steps = int(steps_per_epoch) if steps_per_epoch is not None \
        else max(1, data.train_size // batch_size)
    if steps < 1:
        raise ValueError(f"Expected steps_per_epoch >= 1; received {steps_per_epoch!r}.")
    key = data.task.target_key
    records = data.train_records is not None and not data.cache and \
        key in data.train_records.element_spec
    source = data.train_records if records else data.train_examples
    def groups(class_id: int) -> tf.data.Dataset:
        # Groups of K images of one class: K distinct images from one shuffled pass
        # (a pass's remainder waits for the next, reshuffled pass); a class with fewer
        # than K images repeats some (warned above).
        images = source.filter(lambda example: tf.equal(
            tf.cast(tf.reshape(example[key], []), tf.int64), class_id))
        images = images.shuffle(int(min(counts[class_id], _SHUFFLE_BUFFER)), seed=seed,
                                reshuffle_each_iteration=True)
        if counts[class_id] >= images_per_class:
            return images.batch(images_per_class, drop_remainder=True).repeat()
        return images.repeat().batch(images_per_class, drop_remainder=True)

    streams = [groups(int(c)) for c in present]
    num_present = len(present)

    def batch_classes(random: tf.Tensor) -> tf.Tensor:
        # P distinct class streams per batch.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_present, dtype=tf.int64), seed=tf.stack([random, random // 7 + 1]))
        return order[:classes_per_batch]

    choices = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True) \
        .map(batch_classes).unbatch()
    sampled = tf.data.Dataset.choose_from_datasets(streams, choices).unbatch() \
        .take(steps * batch_size)
    balanced = dataclasses.replace(
        data, task="embedding", batch_size=batch_size, train_size=steps * batch_size,
        # The sampler sets the order: no shuffle, no cache (it would freeze one draw),
        # and no reordering between parallel stages (batches must stay P x K).
        shuffle_buffer=1, cache=False, deterministic=True)
    if records:
        return dataclasses.replace(balanced, train_records=sampled,
                                   train_examples=sampled.map(data.decode))
    return dataclasses.replace(balanced, train_examples=sampled, train_records=None,
                               decode=None)
