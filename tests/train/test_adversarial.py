"""Adversarial training as a fit option, and robust evaluation."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.attacks import projected_gradient_descent
from visionkit.train.adversarial import AdversarialTraining, check_attack_task

SHAPE = (4, 5, 2)
ATTACK = {"method": "pgd", "epsilon": 8.0, "steps": 3, "step_size": 3.0, "random_start": False}


def _linear(weights, bias):
    inputs = keras.Input(SHAPE)
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("logits").set_weights([weights, bias])
    return model


def _problem(seed: int):
    """Seeded (weights, bias) of a small linear classifier, six raw images, their labels
    and the from-logits loss."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.002, (int(np.prod(SHAPE)), 3)).astype("float32")
    bias = np.zeros(3, "float32")
    images = rng.uniform(0, 255, (6, *SHAPE)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2])
    return weights, bias, images, labels, keras.losses.SparseCategoricalCrossentropy(
        from_logits=True)


def test_an_adversarial_step_is_an_optimizer_step_on_the_attacked_batch():
    weights, bias, images, labels, loss = _problem(seed=0)

    wrapper = AdversarialTraining(_linear(weights, bias), ATTACK)
    wrapper.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    wrapper.train_on_batch(images, labels)

    # Reference: the attack on the untouched model, then a plain SGD step on its output.
    reference = _linear(weights, bias)
    attacked = projected_gradient_descent(lambda x: loss(labels, reference(x)), images, 8.0,
                                          3, 3.0, random_start=False).numpy()
    assert np.abs(attacked - images).max() > 7.0  # the batch really moved
    reference.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    reference.train_on_batch(attacked, labels)
    for ours, expected in zip(wrapper.trained_model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
    # A plain step on the clean batch lands elsewhere.
    clean = _linear(weights, bias)
    clean.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    clean.train_on_batch(images, labels)
    assert not np.allclose(clean.get_weights()[0], reference.get_weights()[0], atol=1e-7)


@pytest.mark.parametrize("fraction", [0.5, 0.34])
def test_a_clean_fraction_keeps_the_first_images_of_each_batch_clean(fraction):
    weights, bias, images, labels, loss = _problem(seed=1)

    wrapper = AdversarialTraining(_linear(weights, bias), {**ATTACK, "clean_fraction": fraction})
    wrapper.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    wrapper.train_on_batch(images, labels)

    # Reference (Goodfellow et al. 2015's mixed batch): round(f * 6) clean images first,
    # the attacked copies of the others after them, then a plain SGD step.
    reference = _linear(weights, bias)
    attacked = projected_gradient_descent(lambda x: loss(labels, reference(x)), images, 8.0,
                                          3, 3.0, random_start=False).numpy()
    clean = int(round(fraction * 6))
    mixed = np.concatenate([images[:clean], attacked[clean:]])
    reference.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    reference.train_on_batch(mixed, labels)
    for ours, expected in zip(wrapper.trained_model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fraction", [1.0, -0.1, "half", True])
def test_a_bad_clean_fraction_is_named(fraction):
    with pytest.raises(ValueError, match="clean_fraction"):
        AdversarialTraining(_linear(np.zeros((40, 3), "float32"), np.zeros(3, "float32")),
                            {**ATTACK, "clean_fraction": fraction})


def test_fit_with_adversarial_training_hands_back_the_plain_model(tmp_path, tiny_digits):
    keras.utils.set_random_seed(0)
    model = vk.models.build("simple_cnn", tiny_digits.input_shape, 10, filters=(4,))
    run = vk.train.fit(model, tiny_digits, epochs=1, steps_per_epoch=2, verbose=0,
                       run_dir=tmp_path / "run", plots=False,
                       adversarial={"method": "pgd", "epsilon": 8, "steps": 2})
    assert run.model is model
    assert not isinstance(run.model, AdversarialTraining)
    assert {"loss", "accuracy", "val_accuracy"} <= set(run.history)
    # The best checkpoint is the trained model itself, loadable without visionkit's wrapper.
    saved = keras.saving.load_model(os.path.join(run.run_dir, "checkpoints", "best.keras"))
    assert saved.name == model.name and len(saved.weights) == len(model.weights)
    assert 0.0 <= run.metrics["accuracy"] <= 1.0


def test_fit_rejects_bad_adversarial_settings(tiny_digits):
    with pytest.raises(ValueError, match="epsilonn"):
        vk.train.fit("simple_cnn", tiny_digits, epochs=1, verbose=0,
                     model_kwargs={"filters": (4,)}, adversarial={"epsilonn": 8})


def test_check_attack_task_names_unsupported_tasks():
    from visionkit.tasks import get_task

    check_attack_task(get_task("segmentation"), "fit(adversarial=...)")
    with pytest.raises(ValueError, match="detection"):
        check_attack_task(get_task("detection"), "fit(adversarial=...)")


def test_robust_evaluation_matches_attacking_by_hand(tiny_digits):
    keras.utils.set_random_seed(0)
    model = vk.models.build("simple_cnn", tiny_digits.input_shape, 10, filters=(4,))
    clean = vk.train.evaluate(model, tiny_digits)
    zero = vk.train.evaluate(model, tiny_digits, attack={"epsilon": 0, "steps": 1})
    assert zero["accuracy"] == clean["accuracy"]
    assert zero["attack"]["epsilon"] == 0.0

    attack = {"epsilon": 16, "steps": 2, "random_start": False}
    robust = vk.train.evaluate(model, tiny_digits, attack=attack)
    loss = tiny_digits.task.loss(model)
    correct = total = 0
    for images, labels in tiny_digits.val:
        attacked = projected_gradient_descent(lambda x, y=labels: loss(y, model(x)), images,
                                              16.0, 2, random_start=False)
        correct += int(np.sum(np.argmax(model(attacked), -1) == labels.numpy()))
        total += len(labels)
    assert robust["num_examples"] == total == 48
    assert robust["accuracy"] == pytest.approx(correct / total)
    assert robust["accuracy"] <= clean["accuracy"]
