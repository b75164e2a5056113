"""Seeded, stratified train / validation splits."""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices"]


def split_indices(labels: np.ndarray, validation_split: float,
                  seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Splits example indices into train and validation, stratified by label.

    Every class with at least two examples keeps at least one in each split. The
    indices come back sorted, so the split does not depend on the order of classes.

    Raises:
        ValueError: if `validation_split` is not in [0, 1).
    """
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(
            f"Expected validation_split in [0, 1); received validation_split={validation_split!r}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        rng.shuffle(index)
        count = int(round(len(index) * validation_split))
        if validation_split > 0 and len(index) >= 2:
            count = min(max(count, 1), len(index) - 1)
        val.extend(index[:count])
        train.extend(index[count:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))
