"""Slow: distillation and adversarial training measured on the digits.

Figures measured on the 2-core reference machine (see the issue report) are recorded in
each test's docstring; the assertions are the issue's criteria.
"""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk

pytestmark = pytest.mark.slow

IMAGE_SIZE = (16, 16)
SEEDS = (0, 1, 2)
EPOCHS = 10
TEACHER = {"filters": (32, 64, 128)}
STUDENT = {"filters": (16, 32)}


def _digits(seed: int = 0):
    return vk.data.digits(image_size=IMAGE_SIZE, batch_size=32, seed=0)


@pytest.mark.xfail(strict=True, reason=(
    "not met: teacher 0.978; student (16, 32) alone 0.769/0.758/0.769 (mean 0.765), "
    "distilled at T=4, alpha=0.1 0.638/0.613/0.571 (mean 0.607), seeds 0-2, 10 epochs. "
    "No fault found: a distiller step equals a hand-written GradientTape step of Hinton's "
    "loss (test_distill.py; losses and gradients agree to 1e-6 on these models). The "
    "student's 10-pixel receptive field does not cover the 16-pixel digits (a capacity "
    "gap); more soft weight or a higher T makes it worse, and a student that covers the "
    "image, (16, 32, 64), gains nothing either: alone 0.953/0.955/0.961 (mean 0.956), "
    "distilled 0.955/0.944/0.947 (mean 0.949)"))
def test_a_distilled_student_beats_the_same_student_trained_alone():
    """Teacher simple_cnn (32, 64, 128) trained 10 epochs (seed 0); student simple_cnn
    (16, 32), 10 epochs at fit's defaults, alone on hard labels vs distilled (T=4,
    alpha=0.1), seeds 0, 1, 2, validation accuracy averaged.

    Measured: teacher 0.978; alone 0.769, 0.758, 0.769 (mean 0.765); distilled 0.638,
    0.613, 0.571 (mean 0.607). With a (4, 8) student: alone mean 0.373, distilled 0.275.
    Seed 0, (16, 32): alpha=1 through the distiller 0.769 (= alone); T=4, alpha=0.5
    0.688; T=2, alpha=0.5 0.716; T=1, alpha=0 0.758; 30 epochs: alone 0.864, T=4,
    alpha=0.1 0.822, T=2, alpha=0.5 0.838. Student (8, 16, 32), seed 0: alone 0.891,
    T=4, alpha=0.1 0.858, T=2, alpha=0.5 0.891. Student (16, 32, 64): alone 0.953, 0.955,
    0.961 (seeds 0-2, mean 0.956); T=4, alpha=0.1 0.955, 0.944, 0.947 (mean 0.949);
    T=2, alpha=0.5 0.955 (seed 0).
    """
    data = _digits()
    teacher = vk.train.fit("simple_cnn", data, epochs=EPOCHS, seed=0, verbose=0,
                           model_kwargs=TEACHER).model
    teacher_accuracy = vk.train.evaluate(teacher, data)["accuracy"]
    alone, distilled = [], []
    for seed in SEEDS:
        alone.append(vk.train.fit("simple_cnn", data, epochs=EPOCHS, seed=seed, verbose=0,
                                  model_kwargs=STUDENT).metrics["accuracy"])
        distilled.append(vk.train.distill(teacher, "simple_cnn", data, temperature=4.0,
                                          alpha=0.1, epochs=EPOCHS, seed=seed, verbose=0,
                                          model_kwargs=STUDENT).metrics["accuracy"])
    print(f"\nteacher {teacher_accuracy:.4f}; student alone {alone} mean "
          f"{np.mean(alone):.4f}; distilled {distilled} mean {np.mean(distilled):.4f}")
    assert teacher_accuracy > np.mean(alone)
    assert np.mean(distilled) > np.mean(alone)


@pytest.fixture(scope="module")
def standard_and_adversarial():
    """simple_cnn (32, 64, 128) 10 epochs at fit's defaults (seed 0), standard vs
    adversarial training (PGD L-inf, epsilon 8 of 255, 7 steps, random start, half of each
    batch left clean as Goodfellow et al. 2015); (clean, robust) validation accuracy,
    robust under PGD epsilon 8, 10 steps, random start (seed 0).

    Measured (359 validation digits): standard (0.978, 0.106), adversarial (0.975, 0.830).
    With the former (32, 64) model, whose 10-pixel receptive field does not cover the
    16-pixel digits: standard (0.903, 0.008); every batch attacked (0.752, 0.552); half
    clean (0.797, 0.501); half clean at epsilon 4 (0.838, 0.432). With (32, 64, 128) and
    half clean at epsilon 4: (0.986, 0.777).
    """
    data = _digits()
    attack = {"method": "pgd", "epsilon": 8, "steps": 10}
    results = {}
    for name, adversarial in (("standard", None),
                              ("adversarial", {"method": "pgd", "epsilon": 8, "steps": 7,
                                               "clean_fraction": 0.5})):
        model = vk.train.fit("simple_cnn", data, epochs=EPOCHS, seed=0, verbose=0,
                             model_kwargs={"filters": (32, 64, 128)},
                             adversarial=adversarial).model
        results[name] = (vk.train.evaluate(model, data)["accuracy"],
                         vk.train.evaluate(model, data, attack=attack)["accuracy"])
    print(f"\n(clean, robust under PGD-10 eps 8): {results}")
    return results


def test_adversarial_training_raises_robust_accuracy_under_pgd(standard_and_adversarial):
    robust_standard = standard_and_adversarial["standard"][1]
    robust_adversarial = standard_and_adversarial["adversarial"][1]
    assert robust_adversarial - robust_standard >= 0.20


def test_adversarial_training_costs_under_5_points_of_clean_accuracy(
        standard_and_adversarial):
    clean_standard = standard_and_adversarial["standard"][0]
    clean_adversarial = standard_and_adversarial["adversarial"][0]
    assert clean_standard - clean_adversarial < 0.05
