"""Adversarial attacks on raw 0..255 pixels: the core shared by training and interpretation.

`projected_gradient_descent` is the attack of Madry et al. 2018: from the clean images
(or a random point of the epsilon-ball around them), take `steps` steps up the gradient
of a loss, each followed by the projection back onto the ball and onto the valid pixel
range. It is plain TensorFlow graph code (one `tf.while_loop`), so `vk.train.fit`'s
adversarial training runs it inside its compiled training step, `vk.train.evaluate`
inside a compiled evaluation function and `vk.interpret.pgd` as one `tf.function`.
Fast gradient sign (Goodfellow et al. 2015) is the one-step L-inf case without a random
start and with `step_size = epsilon`.

Units: visionkit models take raw pixels in 0..255, so `epsilon` and `step_size` are in
those units (the common "8/255" of images scaled to 0..1 is `epsilon=8`).

References:
    - [Towards Deep Learning Models Resistant to Adversarial Attacks](
      https://arxiv.org/abs/1706.06083) (Madry et al., ICLR 2018)
    - [Explaining and Harnessing Adversarial Examples](https://arxiv.org/abs/1412.6572)
      (Goodfellow et al., ICLR 2015)

Example:

>>> import numpy as np, tensorflow as tf
>>> images = tf.constant(np.full((2, 4, 4, 1), 100.0, "float32"))
>>> adversarial = projected_gradient_descent(lambda x: tf.reduce_sum(x), images,
...                                          epsilon=8.0, steps=3, random_start=False)
>>> float(tf.reduce_max(adversarial)), float(tf.reduce_min(adversarial))
(108.0, 108.0)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

__all__ = ["Attack", "NORMS", "PIXEL_RANGE", "parse_attack", "projected_gradient_descent",
           "warn_fractional_epsilon"]

# The raw pixel range visionkit models take.
PIXEL_RANGE = (0.0, 255.0)
NORMS = ("inf", "2")
METHODS = ("pgd", "fgsm")
# Madry et al.'s step size rule of thumb (their code and the robustness library): steps
# of 2.5 * epsilon / steps let the iterate reach the ball's boundary from any start.
STEP_SIZE_FACTOR = 2.5
# Keeps an all-zero gradient's L2 normalisation finite.
_NORM_FLOOR = 1e-12


def warn_fractional_epsilon(epsilon: float, norm: str, argument: str) -> None:
    """Warns when an L-inf `epsilon` below 1 looks like a 0..1-scaled budget.

    visionkit's pixels are 0..255: `epsilon=8/255` (0.031) changes no pixel by more than
    0.031 of 255, i.e. no attack at all; the user most likely meant `epsilon=8`. L2
    budgets below 1 can be meant (an image's whole perturbation), so only L-inf warns.
    """
    if norm == "inf" and 0.0 < float(epsilon) < 1.0:
        warnings.warn(f"{argument}: epsilon={float(epsilon):g} is in pixel units of 0..255, "
                      f"so no value moves by even one grey level. If you meant a fraction of "
                      f"the range (the '8/255' of images scaled to 0..1), pass "
                      f"epsilon={float(epsilon) * PIXEL_RANGE[1]:g}.", stacklevel=3)


def _per_example_l2(values: tf.Tensor) -> tf.Tensor:
    """L2 norm of each example `[B, 1, 1, 1]` (keeps the rank for broadcasting)."""
    axes = tf.range(1, tf.rank(values))
    return tf.sqrt(tf.reduce_sum(tf.square(values), axis=axes, keepdims=True))


def _project(delta: tf.Tensor, epsilon: float, norm: str) -> tf.Tensor:
    if norm == "inf":
        return tf.clip_by_value(delta, -epsilon, epsilon)
    length = _per_example_l2(delta)
    return delta * tf.minimum(1.0, epsilon / tf.maximum(length, _NORM_FLOOR))


def _random_start(images: tf.Tensor, epsilon: float, norm: str, seed: Any) -> tf.Tensor:
    """A point drawn uniformly from the epsilon-ball (L-inf box, or L2 ball)."""
    shape = tf.shape(images)
    if norm == "inf":
        return keras.random.uniform(shape, -epsilon, epsilon, seed=seed)
    direction = keras.random.normal(shape, seed=seed)
    direction = direction / tf.maximum(_per_example_l2(direction), _NORM_FLOOR)
    dimensions = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
    per_example = tf.concat([shape[:1], tf.ones_like(shape[1:])], axis=0)
    radius = keras.random.uniform(per_example, 0.0, 1.0, seed=seed) ** (1.0 / dimensions)
    return direction * epsilon * radius


def projected_gradient_descent(loss_fn: Callable[[tf.Tensor], tf.Tensor], images: Any,
                               epsilon: float, steps: int = 10,
                               step_size: float | None = None, norm: str = "inf",
                               random_start: bool = True, seed: Any = None,
                               pixel_range: tuple[float, float] = PIXEL_RANGE) -> tf.Tensor:
    """Images within `epsilon` of `images` that maximise `loss_fn` (Madry et al. 2018).

    Each step: `x <- x + step_size * direction(grad)` (the gradient's sign for L-inf, the
    gradient divided by its per-image L2 norm for L2), then the perturbation is projected
    onto the epsilon-ball around the clean images and the result clipped to
    `pixel_range`.

    Args:
        loss_fn: maps a float32 batch `[B, H, W, C]` to the loss to increase: a scalar
            (e.g. the mean cross-entropy against the true labels) or `[B]` values
            (summed). Images do not interact through it, so each image is attacked on
            its own.
        images: float32 `[B, H, W, C]` raw pixels (0..255).
        epsilon: the ball's radius in pixel units (L-inf: largest change of any value;
            L2: Euclidean length of each image's perturbation).
        steps: gradient steps (an int >= 1).
        step_size: pixel units per step. Defaults to `2.5 * epsilon / steps`.
        norm: "inf" or "2". Defaults to "inf".
        random_start: start from a uniform random point of the ball. Defaults to True.
        seed: an int, a `keras.random.SeedGenerator` (a fresh draw each call, e.g. in a
            training step) or None.
        pixel_range: the valid pixel values. Defaults to (0, 255).

    Returns:
        float32 `[B, H, W, C]` adversarial images.

    Raises:
        ValueError: for a `norm` other than "inf" or "2", `epsilon` < 0, `steps` < 1 or
            `step_size` <= 0.
    """
    norm = _check_norm(norm)
    epsilon, steps = float(epsilon), int(steps)
    if epsilon < 0 or steps < 1:
        raise ValueError(f"Expected epsilon >= 0 and steps >= 1; received epsilon={epsilon}, "
                         f"steps={steps}.")
    step_size = STEP_SIZE_FACTOR * epsilon / steps if step_size is None else float(step_size)
    if step_size <= 0 and epsilon > 0:
        raise ValueError(f"Expected step_size > 0; received step_size={step_size}.")
    low, high = (float(v) for v in pixel_range)
    clean = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if random_start and epsilon > 0:
        start = tf.clip_by_value(clean + _random_start(clean, epsilon, norm, seed), low, high)
    else:
        start = clean

    def step(index: tf.Tensor, current: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(current)
            loss = tf.reduce_sum(tf.cast(loss_fn(current), tf.float32))
        gradient = tf.cast(tape.gradient(loss, current), tf.float32)
        if norm == "inf":
            direction = tf.sign(gradient)
        else:
            direction = gradient / tf.maximum(_per_example_l2(gradient), _NORM_FLOOR)
        moved = current + step_size * direction
        projected = clean + _project(moved - clean, epsilon, norm)
        return index + 1, tf.clip_by_value(projected, low, high)

    _, adversarial = tf.while_loop(lambda index, _: index < steps, step,
                                   (tf.constant(0), start))
    return tf.stop_gradient(adversarial)


def _check_norm(norm: Any) -> str:
    text = str(norm).lower().removeprefix("l")
    text = {"infinity": "inf", "linf": "inf"}.get(text, text)
    if text not in NORMS:
        raise ValueError(f"Expected norm 'inf' or '2'; received norm={norm!r}.")
    return text


@dataclasses.dataclass(frozen=True)
class Attack:
    """An attack's settings, as `fit(adversarial=...)` and `evaluate(attack=...)` take them.

    Attributes:
        method: "pgd" (Madry et al. 2018) or "fgsm" (one step of `epsilon`, no random
            start; Goodfellow et al. 2015).
        epsilon: the perturbation budget in pixel units (0..255).
        steps: gradient steps (1 for "fgsm").
        step_size: pixel units per step (None: `2.5 * epsilon / steps`; `epsilon` for fgsm).
        norm: "inf" or "2".
        random_start: start from a random point of the ball (False for fgsm).
    """

    method: str = "pgd"
    epsilon: float = 8.0
    steps: int = 10
    step_size: float | None = None
    norm: str = "inf"
    random_start: bool = True

    def run(self, loss_fn: Callable[[tf.Tensor], tf.Tensor], images: Any,
            seed: Any = None) -> tf.Tensor:
        """The adversarial images of `images` for `loss_fn` (graph code)."""
        return projected_gradient_descent(loss_fn, images, self.epsilon, self.steps,
                                          self.step_size, self.norm, self.random_start, seed)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_attack(spec: Attack | Mapping[str, Any] | None, argument: str = "attack"
                 ) -> Attack | None:
    """An `Attack` from a dict such as `{"method": "pgd", "epsilon": 8, "steps": 10}`.

    Raises:
        ValueError: naming `argument` and the key, for an unknown key or method, or a
            value out of range.
    """
    if spec is None or isinstance(spec, Attack):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"Expected {argument} as a dict like {{'method': 'pgd', 'epsilon': "
                        f"8, 'steps': 10}}; received {type(spec).__name__}.")
    known = {f.name for f in dataclasses.fields(Attack)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"Unknown {argument} key(s) {unknown}; expected some of "
                         f"{sorted(known)}.")
    method = str(spec.get("method", "pgd")).lower()
    if method not in METHODS:
        raise ValueError(f"Expected {argument}['method'] in {METHODS}; received {method!r}.")
    values = dict(spec, method=method)
    if method == "fgsm":
        for key, forced in (("steps", 1), ("random_start", False)):
            if key in spec and spec[key] != forced:
                raise ValueError(f"{argument}: fgsm takes one step without a random start; "
                                 f"received {key}={spec[key]!r}.")
        values.update(steps=1, random_start=False)
        values["step_size"] = spec.get("step_size") or float(spec.get("epsilon", 8.0))
    attack = Attack(**values)
    if not 0 <= float(attack.epsilon) <= PIXEL_RANGE[1]:
        raise ValueError(f"Expected {argument}['epsilon'] in [0, 255] (pixel units); received "
                         f"{attack.epsilon!r}.")
    if int(attack.steps) < 1 or int(attack.steps) != attack.steps:
        raise ValueError(f"Expected {argument}['steps'] as an integer >= 1; received "
                         f"{attack.steps!r}.")
    if attack.step_size is not None and float(attack.step_size) <= 0:
        raise ValueError(f"Expected {argument}['step_size'] > 0; received "
                         f"{attack.step_size!r}.")
    warn_fractional_epsilon(attack.epsilon, _check_norm(attack.norm), argument)
    return dataclasses.replace(attack, epsilon=float(attack.epsilon), steps=int(attack.steps),
                               norm=_check_norm(attack.norm),
                               random_start=bool(attack.random_start))
