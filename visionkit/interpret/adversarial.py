"""Projected gradient descent adversarial examples (Madry et al. 2018), next to `fgsm`.

The attack itself is `visionkit.attacks.projected_gradient_descent` (shared with
adversarial training and robust evaluation); this module points it at what an
explanation targets: the score of the target (default: each image's predicted class)
is pushed down. The loss climbed is the target's cross-entropy: `-log(score)` for
probability outputs (softmax, sigmoid, per-pixel probabilities), the softmax
cross-entropy of the target class for a classifier ending in logits, and `-score` for a
single logit.

Reference:
    [Towards Deep Learning Models Resistant to Adversarial Attacks](
    https://arxiv.org/abs/1706.06083) (Madry et al., ICLR 2018)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 24, 32, 3)).astype("float32")
>>> result = pgd(model, images, epsilon=8.0, steps=3)
>>> bool(np.abs(result["perturbation"]).max() <= 8.0 + 1e-3), result["adversarial"].shape
(True, (2, 24, 32, 3))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.attacks import (
    NORMS,
    PIXEL_RANGE,
    projected_gradient_descent,
    warn_fractional_epsilon,
)
from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_float, check_int

__all__ = ["pgd"]

# The most steps an attack may take (Madry et al. evaluate with up to 100; more only
# costs time).
MAX_STEPS = 1000
# Probabilities are floored here before the log, so an underflowed score stays finite.
_SMALLEST_SCORE = 1e-30


def attack_outputs(run: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]],
                   images: tf.Tensor, method: str) -> dict[str, np.ndarray]:
    """What `fgsm` and `pgd` return, from `run(images)` -> (adversarial images, classes
    before, classes after).

    Raises:
        ArgumentError (a ValueError): when the adversarial images are not finite.
    """
    adversarial, before, after = (t.numpy() for t in run(images))
    check_finite_result(adversarial, method)
    return {"adversarial": adversarial, "perturbation": adversarial - images.numpy(),
            "original_class": before, "adversarial_class": after, "flipped": before != after}


def pgd(model: keras.Model, images: Any, target: Any = None, epsilon: float = 8.0,
        steps: int = 10, step_size: float | None = None, norm: str = "inf",
        random_start: bool = True, seed: int = 0, task: Any = None,
        output: str | int | None = None) -> dict[str, np.ndarray]:
    """Projected-gradient-descent adversarial examples that lower the target's score.

    Each of `steps` steps moves the images up the gradient of the target's
    cross-entropy (its sign for L-inf; normalised per image for L2), then projects them
    back onto the epsilon-ball around the originals and the 0..255 range; the start is
    a uniform random point of the ball (`random_start`). All in one `tf.function`.

    Args:
        model: a Keras model on raw 0..255 float pixels.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s) to push down, a `Target`, or None (the predicted class).
        epsilon: the ball's radius in pixel units (0..255): the largest change of any
            value (L-inf) or each image's perturbation length (L2). Defaults to 8. An
            L-inf epsilon below 1 (e.g. 8/255 meant for 0..1 images) warns.
        steps: gradient steps, in [1, 1000]. Defaults to 10.
        step_size: pixel units per step. Defaults to `2.5 * epsilon / steps`.
        norm: "inf" or "2". Defaults to "inf".
        random_start: start from a random point of the ball. Defaults to True.
        seed: seed of the random start (>= 0). Defaults to 0.
        task: task for the target.
        output: the output attacked, by name or index, for a model with several.

    Returns:
        A dict of NumPy arrays: `adversarial` images (float32 `[B, H, W, C]`, in 0..255),
        `perturbation` (adversarial - original), `original_class` and
        `adversarial_class` (`[B]`, the class the target object explains before and
        after), and `flipped` (`[B]` bool).

    Raises:
        ArgumentError (a ValueError): naming `images` (also for values outside 0..255;
            images within 0..1 warn), `target`, `output`, `epsilon`
            (in [0, 255]), `steps`, `step_size` (> 0), `norm` or `seed`.
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    adapter.require_float_input("pgd")
    epsilon = check_float(epsilon, "epsilon", minimum=0.0, maximum=255.0)
    steps = check_int(steps, "steps", minimum=1, maximum=MAX_STEPS)
    if step_size is not None:
        step_size = check_float(step_size, "step_size", minimum=0.0)
        if step_size <= 0:
            raise ArgumentError("step_size", f"Expected step_size > 0 (pixel units); "
                                f"received step_size={step_size!r}.")
    norm_name = str(norm).lower().removeprefix("l")
    if norm_name not in NORMS:
        raise ArgumentError("norm", f"Expected norm 'inf' or '2'; received norm={norm!r}.")
    seed = check_int(seed, "seed", minimum=0)
    warn_fractional_epsilon(epsilon, norm_name, "pgd")
    low, high = float(tf.reduce_min(images)), float(tf.reduce_max(images))
    if low < PIXEL_RANGE[0] or high > PIXEL_RANGE[1]:
        # The attack clips to 0..255: the clean images would change beyond epsilon.
        raise ArgumentError("images", f"Expected raw pixels in [0, 255]; received values "
                            f"in [{low:g}, {high:g}] (normalised images? pass the raw ones).")
    scored = adapter.scored
    logits_classifier = adapter.head.from_logits and len(scored.outputs[0].shape) == 2 \
        and (scored.outputs[0].shape[-1] or 0) > 1

    def objective(outputs, state):
        outputs = tf.cast(outputs, tf.float32)
        if logits_classifier:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(
                target_object.classes(state), outputs)
        score = target_object.score(outputs, state)
        if adapter.head.from_logits:
            return -score
        return -tf.math.log(tf.maximum(score, _SMALLEST_SCORE))

    @tf.function
    def run(images):
        state = target_object.prepare(scored(images, training=False))
        adversarial = projected_gradient_descent(
            lambda x: objective(scored(x, training=False), state), images, epsilon, steps,
            step_size, norm_name, bool(random_start), seed)
        after = target_object.prepare(scored(adversarial, training=False))
        return adversarial, target_object.classes(state), target_object.classes(after)

    return attack_outputs(run, images, "pgd")
