"""Metric learning and attacks on the inputs a new user gives: label encodings, batches
without pairs, classifier backbones, 0..1 attack budgets. Values against naive NumPy
references (hand-written loops), errors naming the input."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.tasks import get_task
from visionkit.train.adversarial import check_attack_task
from visionkit.train.metric_losses import ContrastiveLoss, TripletLoss, mine_triplets
from visionkit.train.retrieval_metrics import recall_at_k, verification_auc

LABELS = np.array([0, 1, 2, 0, 1, 2, 1, 0])


def _embeddings(count=len(LABELS), dim=4, seed=3):
    values = np.random.default_rng(seed).normal(size=(count, dim)).astype("float32")
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def _reference_batch_hard_loss(labels, embeddings, margin):
    """Naive loops: mean over anchors of max(d(a, farthest p) - d(a, nearest n) + m, 0)."""
    losses = []
    for a in range(len(labels)):
        d = [math.dist(embeddings[a], e) for e in embeddings]
        positives = [d[p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        negatives = [d[n] for n in range(len(labels)) if labels[n] != labels[a]]
        if positives and negatives:
            losses.append(max(max(positives) - min(negatives) + margin, 0.0))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("encode", [
    lambda y: y.astype(np.int64), lambda y: y.astype(np.int32), lambda y: y.astype(np.float32),
    lambda y: y.reshape(-1, 1), lambda y: np.eye(3, dtype="float32")[y]],
    ids=["int64", "int32", "float32", "column", "one_hot"])
def test_triplet_loss_reads_every_label_encoding_as_class_ids(encode):
    embeddings = _embeddings()
    expected = _reference_batch_hard_loss(LABELS, embeddings, margin=0.5)
    loss = TripletLoss(margin=0.5)(encode(LABELS), embeddings)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    anchors, positives, negatives = mine_triplets(encode(LABELS), embeddings, "semi_hard")
    reference = mine_triplets(LABELS, embeddings, "semi_hard")
    assert [a.tolist() for a in (anchors, positives, negatives)] == \
        [r.tolist() for r in reference]


def test_contrastive_loss_reads_one_hot_labels():
    embeddings = _embeddings()
    pairs = [(i, j) for i in range(len(LABELS)) for j in range(i + 1, len(LABELS))]
    expected = np.mean([0.5 * math.dist(embeddings[i], embeddings[j]) ** 2
                        if LABELS[i] == LABELS[j]
                        else 0.5 * max(1.0 - math.dist(embeddings[i], embeddings[j]), 0) ** 2
                        for i, j in pairs])
    assert float(ContrastiveLoss()(np.eye(3)[LABELS], embeddings)) == \
        pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [TripletLoss(), ContrastiveLoss()], ids=["triplet",
                                                                          "contrastive"])
def test_labels_that_do_not_match_the_embeddings_are_named(loss):
    with pytest.raises(ValueError, match=r"y_true with 5 labels"):
        loss(LABELS[:5], _embeddings())
    with pytest.raises(ValueError, match=r"y_true as class ids"):
        loss(np.zeros((len(LABELS), 2, 2)), _embeddings())


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard"])
@pytest.mark.parametrize("labels", [np.zeros(6, int), np.arange(6)], ids=["one_class",
                                                                          "all_distinct"])
def test_a_batch_without_triplets_gives_zero_not_nan_and_says_so(mining, labels):
    embeddings = keras.Variable(_embeddings(6))
    with pytest.warns(UserWarning, match="no anchor has both a positive and a negative"):
        loss = TripletLoss(mining=mining)(labels, embeddings)
    assert float(loss) == 0.0
    with pytest.warns(UserWarning, match="loss is 0"):
        assert mine_triplets(labels, _embeddings(6), mining)[0].size == 0


def test_identical_embeddings_keep_the_margin_and_finite_gradients():
    # A collapsed model: every distance is 0, the loss is the margin, gradients finite.
    import tensorflow as tf

    embeddings = tf.Variable(np.ones((6, 4), "float32"))
    with tf.GradientTape() as tape:
        loss = TripletLoss(margin=0.2)(np.array([0, 0, 1, 1, 2, 2]), embeddings)
    assert float(loss) == pytest.approx(0.2)
    assert np.all(np.isfinite(tape.gradient(loss, embeddings).numpy()))


def test_retrieval_metrics_read_one_hot_labels_and_name_a_bad_k_or_one_class():
    embeddings = _embeddings()
    one_hot = np.eye(3)[LABELS]
    assert recall_at_k(embeddings, one_hot, 2) == recall_at_k(embeddings, LABELS, 2)
    assert verification_auc(embeddings, one_hot) == verification_auc(embeddings, LABELS)
    with pytest.raises(ValueError, match=r"k <= 7 .* received k=8"):
        recall_at_k(embeddings, LABELS, k=8)  # k larger than the gallery
    with pytest.raises(ValueError, match=r"received k=1.5"):
        recall_at_k(embeddings, LABELS, k=1.5)  # not silently k=1
    with pytest.raises(ValueError, match="0 different-class pairs"):
        verification_auc(embeddings, np.zeros(len(LABELS)))


def test_a_classifier_backbone_is_refused_naming_include_top():
    classifier = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                                include_top=True, weights=None, classes=4)
    with pytest.raises(ValueError, match="include_top=False"):
        vk.models.build("siamese", input_shape=(32, 32, 3), backbone=classifier)


def test_backbones_as_keras_applications_and_sequential_on_grey_non_square_images():
    features = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              include_top=False, weights=None)
    model = vk.models.build("siamese", input_shape=(32, 32, 3), backbone=features,
                            embedding_dim=5)
    assert model.output_shape == (None, 5)
    grey = keras.Sequential([keras.Input((12, 20, 1)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 3)])
    model = vk.models.build("siamese", input_shape=(12, 20, 1), backbone=grey,
                            embedding_dim=1)
    outputs = np.asarray(model(np.random.default_rng(0).uniform(0, 255, (3, 12, 20, 1))))
    # One dimension on the unit sphere is a sign: +-1.
    np.testing.assert_allclose(np.abs(outputs), 1.0, atol=1e-5)


def test_an_attack_budget_in_zero_one_units_warns_with_the_pixel_value():
    model = vk.models.build("simple_cnn", (8, 8, 1), 3, filters=(2,))
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 1)).astype("float32")
    with pytest.warns(UserWarning, match="pass epsilon=8"):
        vk.interpret.pgd(model, images, epsilon=8 / 255, steps=1)
    with pytest.warns(UserWarning, match="look scaled to 0..1"):
        vk.interpret.pgd(model, images / 255.0, steps=1)
    with pytest.raises(ValueError, match=r"raw pixels in \[0, 255\]; received values in "
                       r"\[-0\.99"):
        vk.interpret.pgd(model, images / 127.5 - 1.0, steps=1)
    with pytest.warns(UserWarning, match="pass epsilon=7.65"):
        vk.attacks.parse_attack({"epsilon": 0.03})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vk.attacks.parse_attack({"epsilon": 8})
        vk.attacks.parse_attack({"epsilon": 0.5, "norm": "2"})  # an L2 budget may be small


def test_pgd_takes_one_target_per_image_and_names_a_bad_list():
    model = vk.models.build("simple_cnn", (8, 8, 1), 3, filters=(2,))
    images = np.random.default_rng(0).uniform(0, 255, (3, 8, 8, 1)).astype("float32")
    result = vk.interpret.pgd(model, images, target=[2, 0, 1], steps=1)
    assert result["original_class"].tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="one per image"):
        vk.interpret.pgd(model, images, target=[0, 1], steps=1)


@pytest.mark.parametrize("task", ["detection", "embedding"])
def test_an_attack_on_an_unsupported_task_is_named(task):
    with pytest.raises(ValueError, match=f"received a '{task}' data set"):
        check_attack_task(get_task(task), "evaluate(attack=...)")


@pytest.mark.slow
def test_an_embedding_model_exports_without_class_names_and_serves_unit_vectors(tmp_path):
    # Non-square RGB images, a Sequential backbone, no Data at hand: the served
    # embeddings are the Keras model's, of unit length.
    backbone = keras.Sequential([keras.Input((12, 20, 3)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3)])
    model = vk.models.build("siamese", input_shape=(12, 20, 3), backbone=backbone,
                            embedding_dim=3)
    path = vk.export.saved_model(model, str(tmp_path / "saved"), task="embedding")
    predictor = vk.export.load(path)
    images = np.random.default_rng(0).integers(0, 256, (2, 12, 20, 3)).astype("uint8")
    served = np.asarray(predictor(images)["embeddings"])
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(served, np.asarray(model(images.astype("float32"))),
                               atol=1e-5)
    with pytest.raises(ValueError, match="class names"):
        vk.export.saved_model(vk.models.build("simple_cnn", (12, 20, 3), 2, filters=(2,)),
                              str(tmp_path / "classifier"), task="classification")
