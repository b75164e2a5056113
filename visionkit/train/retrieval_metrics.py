"""Retrieval and verification metrics of embeddings: recall@k and verification ROC AUC.

Both read a set of embeddings with their class ids, typically of classes the model never
trained on (the point of metric learning), and use Euclidean distances.

- recall@k (as in Oh Song et al. 2016, "Deep Metric Learning via Lifted Structured
  Feature Embedding", section 5): the fraction of queries whose k nearest other images
  include one of the query's class. Every image is a query once; a query whose class
  has no other image cannot be answered and is left out (counted in a warning).
- Verification ROC AUC: every unordered pair of images is a "same class?" decision
  scored by minus its distance; the AUC is the probability that a random same-class
  pair is closer than a random different-class pair (ties count one half; the
  Mann-Whitney U statistic).

Example:

>>> import numpy as np
>>> embeddings = np.array([[0., 0.], [0., 1.], [5., 0.], [5., 1.]])
>>> labels = np.array([0, 0, 1, 1])
>>> recall_at_k(embeddings, labels, k=1), verification_auc(embeddings, labels)
(1.0, 1.0)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["embedding_distances", "recall_at_k", "verification_auc"]

_EXAMPLES_SHOWN = 5


def _check(embeddings: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)  # one-hot rows -> class ids
    labels = labels.reshape(-1)
    if embeddings.ndim != 2:
        raise ValueError(f"Expected embeddings of shape [N, D]; received shape "
                         f"{embeddings.shape}.")
    if len(labels) != len(embeddings):
        raise ValueError(f"Expected one label per embedding ({len(embeddings)}); received "
                         f"{len(labels)} labels.")
    if len(labels) < 2:
        raise ValueError(f"Expected at least 2 embeddings; received {len(labels)}.")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("Expected finite embeddings; received NaN or infinite values in "
                         f"{int(np.sum(~np.all(np.isfinite(embeddings), axis=1)))} rows.")
    return embeddings, labels


def embedding_distances(embeddings: Any) -> np.ndarray:
    """Euclidean distances `[N, N]` (float64) between the rows of `embeddings` `[N, D]`."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    squared = np.sum(embeddings ** 2, axis=1)
    distances = squared[:, None] - 2.0 * embeddings @ embeddings.T + squared[None, :]
    distances = np.sqrt(np.maximum(distances, 0.0))
    np.fill_diagonal(distances, 0.0)
    return distances


def recall_at_k(embeddings: Any, labels: Any, k: int = 1) -> float:
    """Fraction of queries with an image of their own class among their k nearest others.

    Args:
        embeddings: float `[N, D]`.
        labels: class ids `[N]` (or `[N, 1]`), or one-hot `[N, C]`.
        k: neighbours looked at (the query itself excluded). Defaults to 1.

    Returns:
        recall@k in 0..1, over the queries whose class has at least two images.

    Raises:
        ValueError: for bad shapes, non-finite embeddings, `k` outside 1..N-1, or no
            class with two images.
    """
    embeddings, labels = _check(embeddings, labels)
    if isinstance(k, bool) or not float(k).is_integer() or not 1 <= int(k) <= len(labels) - 1:
        raise ValueError(f"Expected 1 <= k <= {len(labels) - 1} (images minus the query); "
                         f"received k={k!r}.")
    classes, counts = np.unique(labels, return_counts=True)
    alone = classes[counts < 2]
    answerable = ~np.isin(labels, alone)
    if not answerable.any():
        raise ValueError("Expected a class with at least two images; every class has one.")
    if len(alone):
        warnings.warn(f"recall@{k}: {int((~answerable).sum())} queries left out: their "
                      f"class has no other image (classes {alone[:_EXAMPLES_SHOWN].tolist()}"
                      f"{' ...' if len(alone) > _EXAMPLES_SHOWN else ''}).", stacklevel=2)
    distances = embedding_distances(embeddings)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :int(k)]
    hits = np.any(labels[nearest] == labels[:, None], axis=1)
    return float(hits[answerable].mean())


def verification_auc(embeddings: Any, labels: Any) -> float:
    """ROC AUC of "same class?" over every pair, scored by minus the pair's distance.

    Args:
        embeddings: float `[N, D]`.
        labels: class ids `[N]` (or `[N, 1]`), or one-hot `[N, C]`.

    Returns:
        The area under the ROC curve, in 0..1 (0.5: distances tell nothing).

    Raises:
        ValueError: for bad shapes, non-finite embeddings, or pairs of only one kind
            (all same class or all different).
    """
    embeddings, labels = _check(embeddings, labels)
    upper = np.triu_indices(len(labels), k=1)
    distances = embedding_distances(embeddings)[upper]
    same = (labels[:, None] == labels[None, :])[upper]
    positives, negatives = int(same.sum()), int((~same).sum())
    if not positives or not negatives:
        raise ValueError(f"Expected both same-class and different-class pairs; received "
                         f"{positives} same-class and {negatives} different-class pairs.")
    # Mann-Whitney: rank the scores (ties share their mean rank), sum the positives' ranks.
    from scipy.stats import rankdata

    ranks = rankdata(-distances, method="average")
    rank_sum = ranks[same].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))
