"""recall@k and verification AUC against scikit-learn and naive loops."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from visionkit.train.retrieval_metrics import recall_at_k, verification_auc


def _embeddings(seed=0, n=40, classes=4, spread=1.5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    centres = rng.normal(size=(classes, 3)) * spread
    return centres[labels] + rng.normal(size=(n, 3)), labels


def _reference_recall(embeddings, labels, k):
    hits, queries = 0, 0
    for i in range(len(labels)):
        if np.sum(labels == labels[i]) < 2:
            continue
        distances = [(np.linalg.norm(embeddings[i] - embeddings[j]), j)
                     for j in range(len(labels)) if j != i]
        nearest = [j for _, j in sorted(distances)[:k]]
        hits += any(labels[j] == labels[i] for j in nearest)
        queries += 1
    return hits / queries


@pytest.mark.parametrize("seed", [0, 1])
def test_verification_auc_matches_sklearn(seed):
    embeddings, labels = _embeddings(seed)
    same, scores = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            same.append(labels[i] == labels[j])
            scores.append(-np.linalg.norm(embeddings[i] - embeddings[j]))
    expected = roc_auc_score(same, scores)
    assert 0.6 < expected < 0.99  # neither trivial nor perfect
    assert verification_auc(embeddings, labels) == pytest.approx(expected, abs=1e-9)


def test_verification_auc_counts_ties_as_half():
    # Four points on a square: same-class pairs are the sides, as are two other pairs.
    embeddings = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    labels = np.array([0, 0, 1, 1])
    same = [True, False, False, False, False, True]
    scores = [-1, -np.sqrt(2), -1, -1, -np.sqrt(2), -1]
    assert verification_auc(embeddings, labels) == pytest.approx(roc_auc_score(same, scores))


@pytest.mark.parametrize("k", [1, 3])
def test_recall_at_k_matches_a_naive_loop(k):
    embeddings, labels = _embeddings(2, spread=1.0)
    expected = _reference_recall(embeddings, labels, k)
    assert 0.3 < expected < 1.0
    assert recall_at_k(embeddings, labels, k) == pytest.approx(expected)


def test_recall_leaves_out_singleton_classes_with_a_warning():
    embeddings = np.array([[0.0], [0.1], [5.0], [0.12]])
    labels = np.array([0, 0, 1, 2])  # the query of class 1 or 2 has no class-mate
    with pytest.warns(UserWarning, match="2 queries left out"):
        assert recall_at_k(embeddings, labels, 1) == pytest.approx(0.5)


def test_bad_inputs_are_errors_naming_them():
    embeddings, labels = _embeddings()
    with pytest.raises(ValueError, match="one label per embedding"):
        recall_at_k(embeddings, labels[:-1])
    with pytest.raises(ValueError, match="k="):
        recall_at_k(embeddings, labels, k=len(labels))
    with pytest.raises(ValueError, match="same-class and different-class"):
        verification_auc(embeddings[:3], np.zeros(3))
    broken = embeddings.copy()
    broken[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        verification_auc(broken, labels)


def test_evaluate_scores_every_pair_of_the_models_embeddings_as_sklearn_does():
    """`vk.train.evaluate(..., task="embedding")`: the AUC over every unordered pair of
    distinct images (no self-pairs), scored by minus the Euclidean distance of the
    model's own (L2-normalised) outputs, batches in any order, equals scikit-learn's."""
    import keras
    import tensorflow as tf

    import visionkit as vk

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=30)
    images = (rng.uniform(0, 40, (30, 4, 4, 1)) + 60.0 * labels[:, None, None, None]
              ).astype("float32")
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3), keras.layers.UnitNormalization()])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(7)
    metrics = vk.train.evaluate(model, dataset, task="embedding")

    embeddings = np.asarray(model(images))
    upper = np.triu_indices(len(labels), k=1)
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)[upper]
    expected = roc_auc_score((labels[:, None] == labels[None])[upper], -distances)
    assert 0.55 < expected < 0.999
    assert metrics["verification_auc"] == pytest.approx(expected, abs=1e-6)
    assert metrics["recall_at_1"] == pytest.approx(_reference_recall(embeddings, labels, 1))
