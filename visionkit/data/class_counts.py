"""How many training examples (or pixels) a data set holds per class."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["class_counts"]


def _labels(examples: tf.data.Dataset, key: str) -> tf.data.Dataset:
    return examples.map(lambda example: tf.reshape(tf.cast(example[key], tf.int64), [-1]),
                        num_parallel_calls=tf.data.AUTOTUNE)


def class_counts(data: Any) -> np.ndarray:
    """Training examples (classification) or pixels (segmentation) per class, int64 `[k]`.

    Reads labels from the cheap records when the source has them (no decoding), else
    from the examples; pixels marked 255 are not counted.
    """
    key = data.task.target_key
    source = data.train_records if data.train_records is not None and key in \
        data.train_records.element_spec else data.train_examples
    counts = np.zeros(data.num_classes, np.int64)
    for labels in _labels(source, key).batch(256):
        values = labels.flat_values.numpy() if hasattr(labels, "flat_values") \
            else labels.numpy().ravel()
        values = values[(values >= 0) & (values < data.num_classes)]
        counts += np.bincount(values, minlength=data.num_classes)
    return counts
