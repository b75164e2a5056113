"""vk.interpret.pgd: one step is FGSM, more steps stay in the ball and lower the score."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk


def test_one_pgd_step_of_epsilon_from_the_image_is_fgsm(tiny_model, tiny_images):
    fgsm = vk.interpret.fgsm(tiny_model, tiny_images, target=1, epsilon=4.0)
    pgd = vk.interpret.pgd(tiny_model, tiny_images, target=1, epsilon=4.0, steps=1,
                           step_size=4.0, random_start=False)
    np.testing.assert_allclose(pgd["adversarial"], fgsm["adversarial"], atol=1e-4)


def test_pgd_on_logits_stays_in_the_ball_and_lowers_the_target(nested_model):
    images = np.random.default_rng(3).uniform(20, 235, (2, 20, 28, 3)).astype("float32")
    for norm, epsilon in (("inf", 6.0), ("2", 200.0)):
        result = vk.interpret.pgd(nested_model, images, target=0, epsilon=epsilon, steps=5,
                                  norm=norm, seed=1)
        delta = result["perturbation"]
        size = np.abs(delta).max(axis=(1, 2, 3)) if norm == "inf" else \
            np.sqrt((delta ** 2).sum(axis=(1, 2, 3)))
        assert (size <= epsilon + 1e-2).all()
        # The logits head: the target's softmax cross-entropy went up.
        before = np.asarray(nested_model(images))
        after = np.asarray(nested_model(result["adversarial"]))
        shift = lambda z: z[:, 0] - np.log(np.exp(z).sum(axis=1))  # noqa: E731
        assert (shift(after) < shift(before)).all()


def test_pgd_flips_more_of_a_trained_classifier_than_fgsm(trained_digits):
    model, data = trained_digits
    images, _ = next(iter(data.val))
    fgsm = vk.interpret.fgsm(model, images, epsilon=16.0)
    pgd = vk.interpret.pgd(model, images, epsilon=16.0, steps=10)
    np.testing.assert_array_equal(pgd["adversarial_class"],
                                  np.asarray(model(pgd["adversarial"])).argmax(axis=1))
    assert pgd["flipped"].mean() >= fgsm["flipped"].mean()
    assert pgd["flipped"].mean() > 0.5


@pytest.mark.parametrize("arguments,name", [({"norm": "1"}, "norm"), ({"steps": 0}, "steps"),
                                            ({"epsilon": -1}, "epsilon"),
                                            ({"step_size": 0}, "step_size")])
def test_pgd_names_bad_arguments(tiny_model, tiny_images, arguments, name):
    with pytest.raises(vk.interpret.ArgumentError, match=name):
        vk.interpret.pgd(tiny_model, tiny_images, **arguments)
