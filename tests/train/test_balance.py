"""Class weights and class-balanced sampling, for classification and segmentation."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import visionkit as vk
from visionkit.train.balance import (
    ClassWeightedCrossEntropy,
    apply_sampling,
    class_counts,
    class_weighted_loss,
    resolve_class_weights,
)


def test_weighted_loss_matches_a_hand_computed_classification_case():
    labels = np.array([0, 1, 1, 2])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8],
                              [0.2, 0.2, 0.6]], np.float32)
    weights = [2.0, 0.5, 1.0]
    expected = (2.0 * -np.log(0.7) + 0.5 * -np.log(0.6) + 0.5 * -np.log(0.1)
                + 1.0 * -np.log(0.6)) / (2.0 + 0.5 + 0.5 + 1.0)
    value = ClassWeightedCrossEntropy(weights)(labels, probabilities)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    logits = np.log(probabilities)
    assert float(ClassWeightedCrossEntropy(weights, from_logits=True)(labels, logits)) == \
        pytest.approx(expected, rel=1e-5)


def test_weighted_loss_matches_a_hand_computed_segmentation_case_ignoring_255():
    masks = np.array([[[0, 1], [255, 1]]])
    probabilities = np.array([[[[0.9, 0.1], [0.4, 0.6]], [[0.5, 0.5], [0.2, 0.8]]]],
                             np.float32)
    weights = [1.0, 3.0]
    expected = (1.0 * -np.log(0.9) + 3.0 * -np.log(0.6) + 3.0 * -np.log(0.8)) / 7.0
    assert float(ClassWeightedCrossEntropy(weights)(masks, probabilities)) == \
        pytest.approx(expected, rel=1e-5)


def _imbalanced(n=40, rare=4):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (n, 8, 8, 3)).astype(np.float32)
    labels = np.array([1] * rare + [0] * (n - rare))
    return vk.data.from_arrays(images, labels, class_names=["common", "rare"],
                               validation_split=0.0, val_images=images[:4],
                               val_labels=labels[:4], batch_size=8, seed=0)


def test_balanced_weights_follow_the_formula_and_options_are_checked():
    data = _imbalanced()
    counts = class_counts(data)
    assert counts.tolist() == [36, 4]
    weights = resolve_class_weights("balanced", counts, data.class_names, counts=True)
    np.testing.assert_allclose(weights, [40 / (2 * 36), 40 / (2 * 4)])
    assert resolve_class_weights({"rare": 5.0}, None, data.class_names).tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match="not one of the data's 2 classes"):
        resolve_class_weights({"cat": 2.0}, None, data.class_names)
    with pytest.raises(ValueError, match="Expected 2 class weights"):
        resolve_class_weights([1.0, 2.0, 3.0], None, data.class_names)
    with pytest.raises(ValueError, match="non-negative"):
        resolve_class_weights([1.0, -2.0], None, data.class_names)


def test_fit_trains_with_class_weights_and_refuses_two_losses():
    data = _imbalanced()
    run = vk.train.fit("simple_cnn", data, epochs=1, verbose=0, evaluate=False,
                       class_weight="balanced", model_kwargs={"filters": (4,)})
    assert isinstance(run.model.loss, ClassWeightedCrossEntropy)
    np.testing.assert_allclose(run.model.loss.class_weights, [40 / 72, 40 / 8])
    with pytest.raises(ValueError, match="class_weight or loss"):
        vk.train.fit("simple_cnn", data, epochs=1, verbose=0, class_weight="balanced",
                     loss="sparse_categorical_crossentropy", model_kwargs={"filters": (4,)})


def test_balanced_sampling_draws_classes_evenly():
    data = apply_sampling(_imbalanced(), "balanced", seed=0)
    drawn = collections.Counter()
    for _ in range(5):
        for _, labels in data.train:
            drawn.update(labels.numpy().tolist())
    total = sum(drawn.values())
    assert total == 5 * 40
    # 200 draws of a fair coin: 0.5 +- 0.1 is more than 2.8 standard deviations.
    assert abs(drawn[1] / total - 0.5) < 0.1


def test_balanced_sampling_of_segmentation_groups_images_by_their_rarest_class():
    data = vk.data.shapes("segmentation", n=24, image_size=(16, 16), seed=0, batch_size=8)
    counts = class_counts(data)
    pixels = np.concatenate([m.numpy().ravel() for _, m in data.train])
    expected = np.bincount(pixels[pixels != 255], minlength=data.num_classes)
    np.testing.assert_array_equal(counts, expected)  # pixels per class, 255 ignored
    rarity = np.where(counts > 0, counts, np.inf)
    sampled = apply_sampling(data, "balanced", seed=0)
    groups = collections.Counter()
    for _ in range(4):
        for _, masks in sampled.train:
            for mask in masks.numpy():
                shown = np.unique(mask[mask != 255])
                groups[int(shown[np.argmin(rarity[shown])])] += 1
    present = [c for c in groups]
    frequencies = np.array([groups[c] for c in present]) / sum(groups.values())
    assert len(present) >= 2
    np.testing.assert_allclose(frequencies, 1 / len(present), atol=0.15)
    model = vk.models.build("unet", data.input_shape, data.num_classes, depth=2, filters=4)
    loss = class_weighted_loss(model, data, "balanced")
    np.testing.assert_allclose(loss.class_weights, counts.sum() / (len(counts) * counts))
