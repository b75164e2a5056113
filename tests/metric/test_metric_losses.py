"""Triplet mining and the metric-learning losses against naive NumPy references."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.train.metric_losses import (
    ContrastiveLoss,
    TripletLoss,
    mine_triplets,
    pairwise_distances,
)


def _distance(a, b):
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


def _reference_batch_hard(labels, embeddings):
    """Naive loops: each anchor's farthest positive and nearest negative."""
    triplets = []
    for a in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        negatives = [n for n in range(len(labels)) if labels[n] != labels[a]]
        if not positives or not negatives:
            continue
        p = max(positives, key=lambda i: _distance(embeddings[a], embeddings[i]))
        n = min(negatives, key=lambda i: _distance(embeddings[a], embeddings[i]))
        triplets.append((a, p, n))
    return triplets


def _reference_semi_hard(labels, embeddings):
    """Naive loops: per anchor-positive pair, the nearest negative farther than the
    positive, else the farthest negative."""
    triplets = []
    for a, p in itertools.permutations(range(len(labels)), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [n for n in range(len(labels)) if labels[n] != labels[a]]
        if not negatives:
            continue
        d_ap = _distance(embeddings[a], embeddings[p])
        farther = [n for n in negatives if _distance(embeddings[a], embeddings[n]) > d_ap]
        if farther:
            n = min(farther, key=lambda i: _distance(embeddings[a], embeddings[i]))
        else:
            n = max(negatives, key=lambda i: _distance(embeddings[a], embeddings[i]))
        triplets.append((a, p, n))
    return triplets


def _fixed_batch():
    rng = np.random.default_rng(7)
    # 3 classes x 4 images, one class with a single image (no positive), shuffled.
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 3])
    embeddings = rng.normal(size=(len(labels), 5)).astype("float32")
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return labels, embeddings


@pytest.mark.parametrize("mining,reference", [("batch_hard", _reference_batch_hard),
                                              ("semi_hard", _reference_semi_hard)])
def test_mining_picks_the_reference_triplets(mining, reference):
    labels, embeddings = _fixed_batch()
    mined = list(zip(*(part.tolist() for part in mine_triplets(labels, embeddings, mining))))
    expected = reference(labels, embeddings)
    assert sorted(mined) == sorted(expected)
    assert len(expected) == (11 if mining == "batch_hard" else 2 * 4 * 3 + 3 * 2)


@pytest.mark.parametrize("mining,reference", [("batch_hard", _reference_batch_hard),
                                              ("semi_hard", _reference_semi_hard)])
def test_triplet_loss_is_the_mean_hinge_over_the_reference_triplets(mining, reference):
    labels, embeddings = _fixed_batch()
    margin = 0.3
    hinges = [max(_distance(embeddings[a], embeddings[p])
                  - _distance(embeddings[a], embeddings[n]) + margin, 0.0)
              for a, p, n in reference(labels, embeddings)]
    loss = TripletLoss(margin=margin, mining=mining)(labels, embeddings)
    assert float(loss) == pytest.approx(sum(hinges) / len(hinges), rel=1e-5)


def test_semi_hard_prefers_a_negative_beyond_the_positive():
    # On a line: anchor 0 at 0, positive at 1; negatives at 0.5 (hard), 1.5 and 3.
    labels = np.array([0, 0, 1, 1, 1])
    embeddings = np.array([[0.0], [1.0], [0.5], [1.5], [3.0]], "float32")
    anchors, positives, negatives = mine_triplets(labels, embeddings, "semi_hard")
    chosen = {(a, p): n for a, p, n in zip(anchors, positives, negatives)}
    assert chosen[(0, 1)] == 3  # the nearest negative farther than d(a,p)=1 is 1.5
    # Anchor 1 (at 1): positive 0 at distance 1; negatives at 0.5, 0.5, 2 -> 4 (at 3).
    assert chosen[(1, 0)] == 4
    # Hand-computed with margin 0.2: (1 - 1.5 + .2)+ = 0, (1 - 2 + .2)+ = 0 for class 0;
    # anchor 2 (0.5): positives 3 (d=1), 4 (d=2.5); negatives at 0.5 (d 0.5, 0.5).
    # (2,3): no negative farther than 1 -> farthest 0.5: 1 - .5 + .2 = .7
    # (2,4): 2.5 - .5 + .2 = 2.2; (3,2): d=1, negs 1.5, .5 -> farther 1.5: 1-1.5+.2 -> 0
    # (3,4): d=1.5, negs 1.5, .5 -> none farther -> 1.5: .2; (4,2): d=2.5, negs 3, 2 ->
    # 3: 2.5-3+.2 -> 0; (4,3): d=1.5, negs 3, 2 -> 2: 1.5-2+.2 -> 0
    expected = (0 + 0 + 0.7 + 2.2 + 0 + 0.2 + 0 + 0) / 8
    loss = TripletLoss(margin=0.2, mining="semi_hard")(labels, embeddings)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_batch_hard_hand_computed():
    # Anchor 0 at 0: farthest positive at 2, nearest negative at 1 -> 2 - 1 + 0.5 = 1.5.
    labels = np.array([0, 0, 0, 1])
    embeddings = np.array([[0.0], [0.5], [2.0], [1.0]], "float32")
    # anchor 1 (0.5): farthest pos 2 (1.5), neg 0.5 -> 1.5; anchor 2 (2): farthest pos 0
    # (2), neg 1 -> 1.5; anchor 3 has no positive -> left out.
    loss = TripletLoss(margin=0.5, mining="batch_hard")(labels, embeddings)
    assert float(loss) == pytest.approx((1.5 + 1.5 + 1.5) / 3, rel=1e-6)


def test_contrastive_loss_hand_computed():
    # Points at 0, 0.6 (class 0) and 2 (class 1), margin 1.
    labels = np.array([0, 0, 1])
    embeddings = np.array([[0.0, 0.0], [0.6, 0.0], [2.0, 0.0]], "float32")
    # (0,1) similar: 0.36 / 2; (0,2) d=2 beyond margin: 0; (1,2) d=1.4: 0.
    loss = ContrastiveLoss(margin=1.0)(labels, embeddings)
    assert float(loss) == pytest.approx(0.18 / 3, rel=1e-5)
    # margin 2: (1,2): (2 - 1.4)^2 / 2 = 0.18; (0,2): 0.
    loss = ContrastiveLoss(margin=2.0)(labels, embeddings)
    assert float(loss) == pytest.approx((0.18 + 0.18) / 3, rel=1e-5)


def test_losses_are_zero_without_triplets_and_finite_gradients_on_duplicates():
    labels = np.array([0, 1, 2])
    embeddings = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(TripletLoss()(labels, embeddings)) == 0.0
    same = tf.Variable([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    for loss in (TripletLoss(mining="semi_hard"), TripletLoss(), ContrastiveLoss()):
        with tf.GradientTape() as tape:
            value = loss(np.array([0, 0, 1, 1]), same)
        gradient = tape.gradient(value, same)
        assert np.all(np.isfinite(gradient.numpy())), type(loss).__name__


def test_pairwise_distances_match_numpy():
    _, embeddings = _fixed_batch()
    expected = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)
    np.testing.assert_allclose(pairwise_distances(embeddings).numpy(), expected, atol=1e-5)


def test_bad_options_are_errors_and_config_round_trips():
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="hardest")
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=0)
    loss = TripletLoss(margin=0.3, mining="semi_hard")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.margin, again.mining) == (0.3, "semi_hard")


@pytest.mark.parametrize("loss", [TripletLoss(mining="batch_hard"),
                                  TripletLoss(mining="semi_hard"), ContrastiveLoss()],
                         ids=["batch_hard", "semi_hard", "contrastive"])
def test_losses_compile_with_xla(loss):
    labels, embeddings = _fixed_batch()
    compiled = tf.function(lambda y, x: loss(y, x), jit_compile=True)
    assert float(compiled(labels, embeddings)) == pytest.approx(
        float(loss(labels, embeddings)), rel=1e-5)
