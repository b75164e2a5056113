"""Gradient attributions: Grad-CAM, saliency (vanilla, SmoothGrad), integrated gradients, FGSM.

References:
    - [Grad-CAM](https://arxiv.org/abs/1610.02391) (Selvaraju et al., ICCV 2017)
    - [Deep Inside Convolutional Networks](https://arxiv.org/abs/1312.6034)
      (Simonyan et al., 2013)
    - [SmoothGrad](https://arxiv.org/abs/1706.03825) (Smilkov et al., 2017)
    - [Axiomatic Attribution for Deep Networks](https://arxiv.org/abs/1703.01365)
      (Sundararajan et al., ICML 2017)
    - [Explaining and Harnessing Adversarial Examples](https://arxiv.org/abs/1412.6572)
      (Goodfellow et al., ICLR 2015)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 24, 32, 3)).astype("float32")
>>> grad_cam(model, images, target=0).shape
(2, 24, 32)
>>> saliency(model, images, smooth_samples=4).shape
(2, 24, 32)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import ModelAdapter, adapt
from visionkit.interpret.adversarial import attack_outputs
from visionkit.interpret.checks import (
    ArgumentError,
    check_finite_result,
    check_float,
    check_int,
)
from visionkit.interpret.layers import cam_layer
from visionkit.interpret.targets import ClassScore

__all__ = ["fgsm", "grad_cam", "integrated_gradients", "saliency"]


def _normalize(maps: tf.Tensor) -> tf.Tensor:
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return (maps - low) / tf.maximum(high - low, 1e-12)


def grad_cam(model: keras.Model, images: Any, target: Any = None, layer: str | None = None,
             task: Any = None, normalize: bool = True, jit_compile: bool = False,
             output: str | int | None = None) -> np.ndarray:
    """Grad-CAM maps: gradient-weighted activations of a spatial layer, upsampled.

    For a classifier whose head ends in a softmax or sigmoid (a Dense layer with that
    activation, or a separate activation layer), the score differentiated is the class's
    logit, the score before the activation, as the paper does: the gradient of a
    saturated probability is tiny and mostly about the other classes. For a binary model
    with one unit, class 1 differentiates the logit z and class 0 differentiates -z; for
    a multi-label model, class k differentiates the logit of its own sigmoid.

    Args:
        model: a Keras model (Sequential, functional, subclassed, nested sub-models at
            any depth).
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        layer: the spatial layer (nested names allowed). Defaults to the last layer with
            a `[B,h,w,C]` output at least 1/8 of the input's size (`layers.cam_layer`).
        task: task for the target (None: asked from the model's outputs).
        normalize: scale each map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 `[B, H, W]`.

    Raises:
        ArgumentError (a ValueError): naming `layer` (unknown, or without a spatial map:
            the message lists the layers that have one), `images`, `target` or `output`.
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    name = layer if layer is not None else _default_cam_layer(adapter)
    adapter.check_spatial_layer(name)
    logits = adapter.head.pre_activation is not None and isinstance(target_object, ClassScore)
    scorer = target_object.on_logits() if logits else target_object
    extractor = adapter.feature_model([name], logits=logits)

    @tf.function(jit_compile=jit_compile)
    def run(images):
        with tf.GradientTape() as tape:
            features, outputs = extractor(images, training=False)
            score = scorer.score(outputs, scorer.prepare(outputs))
        gradients = tf.cast(tape.gradient(score, features), tf.float32)
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))
        cam = tf.image.resize(cam[..., None], tf.shape(images)[1:3], "bilinear")[..., 0]
        return _normalize(cam) if normalize else cam

    return check_finite_result(run(images).numpy(), "grad_cam")


def _default_cam_layer(adapter: ModelAdapter) -> str:
    try:
        return cam_layer(adapter.graph)
    except ValueError:
        raise ArgumentError("layer", f"Model {adapter.model.name!r} has no reachable layer "
                            "with a spatial map [batch, height, width, channels] (a "
                            "subclassed model's layers cannot be reached); Grad-CAM needs "
                            "one: rebuild the model from keras.Input, or use a method that "
                            "needs no layer (saliency, occlusion).") from None


def _input_gradients(model, target_object, images, state):
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = model(images, training=False)
        score = target_object.score(outputs, state)
    return tape.gradient(score, images), score


def saliency(model: keras.Model, images: Any, target: Any = None, smooth_samples: int = 0,
             noise: float = 0.15, seed: int = 0, task: Any = None,
             jit_compile: bool = False, output: str | int | None = None) -> np.ndarray:
    """Saliency maps: the largest absolute input gradient over channels.

    With `smooth_samples > 0` (SmoothGrad) the gradients are averaged over that many
    copies with Gaussian noise of standard deviation `noise` times the image's range,
    all inside one compiled loop.

    Args:
        model: a Keras model.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        smooth_samples: noisy copies for SmoothGrad; 0 for vanilla. Defaults to 0.
        noise: noise level relative to the image's value range. Defaults to 0.15.
        seed: noise seed. Defaults to 0.
        task: task for the target.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 `[B, H, W]`, not normalized.

    Raises:
        ArgumentError (a ValueError): naming `images`, `target`, `output`,
            `smooth_samples` (an integer >= 0), `noise` (>= 0) or `seed` (>= 0).
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    adapter.require_float_input("saliency")
    samples = check_int(smooth_samples, "smooth_samples", minimum=0)
    noise = check_float(noise, "noise", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0)
    model = adapter.scored

    @tf.function(jit_compile=jit_compile)
    def run(images):
        state = target_object.prepare(model(images, training=False))
        if samples == 0:
            gradients, _ = _input_gradients(model, target_object, images, state)
            return tf.reduce_max(tf.abs(gradients), axis=-1)
        spread = noise * (tf.reduce_max(images, axis=[1, 2, 3], keepdims=True) -
                          tf.reduce_min(images, axis=[1, 2, 3], keepdims=True))
        total = tf.zeros_like(images)
        for step in tf.range(samples):
            noisy = images + spread * tf.random.stateless_normal(
                tf.shape(images), seed=tf.stack([seed, step]))
            gradients, _ = _input_gradients(model, target_object, noisy, state)
            total += gradients
        return tf.reduce_max(tf.abs(total / samples), axis=-1)

    return check_finite_result(run(images).numpy(), "saliency")


def integrated_gradients(model: keras.Model, images: Any, target: Any = None,
                         baseline: Any = 0.0, steps: int = 32, task: Any = None,
                         jit_compile: bool = False,
                         output: str | int | None = None) -> np.ndarray:
    """Integrated gradients along the straight path from `baseline` to each image.

    Uses the trapezoid rule over `steps` intervals, so the attributions of an image sum
    to about `target(image) - target(baseline)` (completeness).

    Args:
        model: a Keras model.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        baseline: a number or an array broadcastable to the images. Defaults to 0 (black).
        steps: path intervals. Defaults to 32.
        task: task for the target.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 `[B, H, W, C]` attributions.

    Raises:
        ArgumentError (a ValueError): naming `images`, `target`, `output`, `steps` (an
            integer in [1, 4096]) or `baseline` (finite, broadcastable to the images).
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    adapter.require_float_input("integrated_gradients")
    intervals = check_int(steps, "steps", minimum=1, maximum=MAX_STEPS)
    base = tf.constant(_baseline(baseline, tuple(images.shape)))
    model = adapter.scored

    @tf.function(jit_compile=jit_compile)
    def run(images, base):
        state = target_object.prepare(model(images, training=False))
        total = tf.zeros_like(images)
        for step in tf.range(intervals + 1):
            alpha = tf.cast(step, tf.float32) / intervals
            weight = tf.where((step == 0) | (step == intervals), 0.5, 1.0)
            gradients, _ = _input_gradients(model, target_object,
                                            base + alpha * (images - base), state)
            total += weight * gradients
        return (images - base) * total / intervals

    return check_finite_result(run(images, base).numpy(), "integrated_gradients")


# The largest number of path intervals of integrated gradients: the paper reports 20 to
# 300 as enough; beyond a few thousand the loop only costs time.
MAX_STEPS = 4096


def _baseline(baseline: Any, shape: tuple) -> np.ndarray:
    try:
        array = np.asarray(baseline, dtype=np.float32)
        ok = array.dtype.kind == "f" and bool(np.all(np.isfinite(array)))
        array = np.broadcast_to(array, shape) if ok else None
    except (TypeError, ValueError):
        array = None
    if array is None or isinstance(baseline, (str, bool)):
        raise ArgumentError("baseline", f"Expected baseline as a finite number or an array "
                            f"broadcastable to the images {shape}; received "
                            f"baseline={baseline!r:.80}.")
    return np.array(array, dtype=np.float32)


def fgsm(model: keras.Model, images: Any, target: Any = None, epsilon: float = 8.0,
         task: Any = None, output: str | int | None = None) -> dict[str, np.ndarray]:
    """Fast-gradient-sign adversarial examples that lower the target's score.

    Args:
        model: a Keras model on raw 0..255 pixels.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s) to push down, a `Target`, or None (the predicted class).
        epsilon: the perturbation's size in pixel units (0..255 scale). Defaults to 8.
        task: task for the target.
        output: the output explained, by name or index, for a model with several.

    Returns:
        A dict of NumPy arrays: `adversarial` images (clipped to 0..255), `perturbation`
        (adversarial - original), `original_class` and `adversarial_class` (`[B]`, the
        class the target object explains before and after), and `flipped` (`[B]` bool).

    Raises:
        ArgumentError (a ValueError): naming `images`, `target`, `output` or `epsilon`
            (in [0, 255]).
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    adapter.require_float_input("fgsm")
    epsilon = check_float(epsilon, "epsilon", minimum=0.0, maximum=255.0)
    model = adapter.scored

    @tf.function
    def run(images):
        state = target_object.prepare(model(images, training=False))
        gradients, _ = _input_gradients(model, target_object, images, state)
        adversarial = tf.clip_by_value(images - epsilon * tf.sign(gradients), 0.0, 255.0)
        after = target_object.prepare(model(adversarial, training=False))
        return adversarial, target_object.classes(state), target_object.classes(after)

    return attack_outputs(run, images, "fgsm")
