"""The attack core against a NumPy reference, step by step, on a linear softmax model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.attacks import Attack, parse_attack, projected_gradient_descent

SHAPE = (3, 4, 5, 2)  # non-square images, 2 channels
CLASSES = 3


def _linear_model(seed: int = 0):
    """Weights small enough that logits stay within a few units (no saturated softmax,
    whose float32 gradients would be rounding noise)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.002, (int(np.prod(SHAPE[1:])), CLASSES)).astype("float32")
    bias = rng.normal(0, 0.1, CLASSES).astype("float32")
    return weights, bias


def _numpy_gradient(images, labels, weights, bias):
    """d/dx of the mean cross-entropy of softmax(x W + b), by hand (float64)."""
    flat = images.reshape(len(images), -1)
    logits = flat @ weights + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    probabilities[np.arange(len(labels)), labels] -= 1.0
    return (probabilities @ weights.T / len(labels)).reshape(images.shape)


def _numpy_pgd(images, labels, weights, bias, epsilon, step_size, steps, norm):
    clean = images.astype(np.float64)
    current = clean.copy()
    for _ in range(steps):
        gradient = _numpy_gradient(current, labels, weights.astype(np.float64), bias)
        if norm == "inf":
            current = current + step_size * np.sign(gradient)
            delta = np.clip(current - clean, -epsilon, epsilon)
        else:
            length = np.sqrt((gradient ** 2).sum(axis=(1, 2, 3), keepdims=True))
            current = current + step_size * gradient / length
            delta = current - clean
            size = np.sqrt((delta ** 2).sum(axis=(1, 2, 3), keepdims=True))
            delta = delta * np.minimum(1.0, epsilon / size)
        current = np.clip(clean + delta, 0.0, 255.0)
    return current


def _tf_loss(labels, weights, bias):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_fn(images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        return loss(labels, flat @ weights + bias)

    return loss_fn


@pytest.mark.parametrize("norm,epsilon,step_size", [("inf", 8.0, 2.0), ("2", 60.0, 25.0)])
def test_pgd_matches_a_numpy_reference_step_for_step(norm, epsilon, step_size):
    weights, bias = _linear_model()
    rng = np.random.default_rng(1)
    # Some values at the borders, so the clip to 0..255 is exercised.
    images = rng.choice([0.0, 3.0, 128.0, 250.0, 255.0], SHAPE).astype("float32")
    labels = np.array([0, 1, 2])
    loss_fn = _tf_loss(labels, weights, bias)
    for steps in range(1, 6):
        ours = projected_gradient_descent(loss_fn, images, epsilon, steps, step_size, norm,
                                          random_start=False).numpy()
        reference = _numpy_pgd(images, labels, weights, bias, epsilon, step_size, steps, norm)
        np.testing.assert_allclose(ours, reference, atol=2e-3, err_msg=f"step {steps}")
        delta = ours - images
        if norm == "inf":
            assert np.abs(delta).max() <= epsilon + 1e-3
        else:
            assert np.sqrt((delta ** 2).sum(axis=(1, 2, 3))).max() <= epsilon + 1e-2
        assert ours.min() >= 0.0 and ours.max() <= 255.0
    # The attack raised the loss it climbs.
    assert float(loss_fn(ours)) > float(loss_fn(images))


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_random_start_stays_in_the_ball_and_is_seeded(norm):
    images = np.full((4, 6, 6, 3), 128.0, "float32")
    zero_loss = lambda x: tf.reduce_sum(x) * 0.0  # noqa: E731  (no gradient: the start stays)
    first = projected_gradient_descent(zero_loss, images, 8.0, 1, norm=norm, seed=3).numpy()
    again = projected_gradient_descent(zero_loss, images, 8.0, 1, norm=norm, seed=3).numpy()
    other = projected_gradient_descent(zero_loss, images, 8.0, 1, norm=norm, seed=4).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    delta = first - images
    if norm == "inf":
        assert np.abs(delta).max() <= 8.0 + 1e-4
        # Uniform in the box: values spread over it (mean |delta| about epsilon / 2).
        assert 3.0 < np.abs(delta).mean() < 5.0
    else:
        lengths = np.sqrt((delta ** 2).sum(axis=(1, 2, 3)))
        assert lengths.max() <= 8.0 + 1e-3 and lengths.min() > 0.0


def test_the_random_start_is_clipped_to_the_pixel_range():
    images = np.zeros((2, 4, 4, 1), "float32")
    adversarial = projected_gradient_descent(lambda x: tf.reduce_sum(x) * 0.0, images, 8.0, 1,
                                             seed=0).numpy()
    assert adversarial.min() >= 0.0 and adversarial.max() <= 8.0


def test_parse_attack_fills_defaults_and_names_bad_keys():
    attack = parse_attack({"method": "pgd", "epsilon": 8, "steps": 10})
    assert attack == Attack("pgd", 8.0, 10, None, "inf", True)
    fgsm = parse_attack({"method": "fgsm", "epsilon": 4})
    assert (fgsm.steps, fgsm.step_size, fgsm.random_start) == (1, 4.0, False)
    assert parse_attack({"norm": "L2"}).norm == "2"
    with pytest.raises(ValueError, match="epsilonn"):
        parse_attack({"epsilonn": 8})
    with pytest.raises(ValueError, match="method"):
        parse_attack({"method": "cw"})
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        parse_attack({"epsilon": 300})
    with pytest.raises(ValueError, match="steps"):
        parse_attack({"steps": 0})
    with pytest.raises(ValueError, match="fgsm"):
        parse_attack({"method": "fgsm", "steps": 5})
    with pytest.raises(ValueError, match="norm"):
        parse_attack({"norm": "1"})
