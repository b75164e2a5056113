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

from visionkit.interpret.layers import INPUT_SUFFIX, cam_layer, check_images, feature_model
from visionkit.interpret.targets import ClassScore, resolve_target

__all__ = ["fgsm", "grad_cam", "integrated_gradients", "saliency"]


def _normalize(maps: tf.Tensor) -> tf.Tensor:
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return (maps - low) / tf.maximum(high - low, 1e-12)


def grad_cam(model: keras.Model, images: Any, target: Any = None, layer: str | None = None,
             task: Any = None, normalize: bool = True, jit_compile: bool = False) -> np.ndarray:
    """Grad-CAM maps: gradient-weighted activations of a spatial layer, upsampled.

    For a classifier ending in a softmax Dense layer, the score differentiated is the
    class's logit (the score before the softmax, as the paper does): the gradient of a
    saturated probability is tiny and mostly about the other classes.

    Args:
        model: a Keras model (flat, or with a nested backbone).
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        layer: the spatial layer (nested names allowed). Defaults to the last layer with
            a `[B,h,w,C]` output at least 1/8 of the input's size (`layers.cam_layer`).
        task: task for the target (None: asked from the model's outputs).
        normalize: scale each map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.

    Returns:
        float32 `[B, H, W]`.

    Raises:
        ValueError: for an unknown layer (listing the conv layers), bad images or target.
    """
    images = check_images(images, model)
    target_object = resolve_target(model, target, task)
    head = _softmax_head(model) if isinstance(target_object, ClassScore) else None
    names = [layer or cam_layer(model)] + ([head.name + INPUT_SUFFIX] if head else [])
    extractor = feature_model(model, names)

    @tf.function(jit_compile=jit_compile)
    def run(images):
        with tf.GradientTape() as tape:
            features, *head_input, outputs = extractor(images, training=False)
            state = target_object.prepare(outputs)
            if head is not None:  # the class score before the softmax, as in the paper
                outputs = tf.matmul(tf.cast(head_input[0], tf.float32), head.kernel)
                outputs = outputs + head.bias if head.use_bias else outputs
            score = target_object.score(outputs, state)
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
        cam = tf.image.resize(cam[..., None], tf.shape(images)[1:3], "bilinear")[..., 0]
        return _normalize(cam) if normalize else cam

    return run(images).numpy()


def _softmax_head(model: keras.Model) -> keras.layers.Dense | None:
    """The final Dense layer when it applies a softmax (its logits are Grad-CAM's score)."""
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return last if isinstance(last, keras.layers.Dense) and activation == "softmax" else None


def _input_gradients(model, target_object, images, state):
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = model(images, training=False)
        score = target_object.score(outputs, state)
    return tape.gradient(score, images), score


def saliency(model: keras.Model, images: Any, target: Any = None, smooth_samples: int = 0,
             noise: float = 0.15, seed: int = 0, task: Any = None,
             jit_compile: bool = False) -> np.ndarray:
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

    Returns:
        float32 `[B, H, W]`, not normalized.
    """
    images = check_images(images, model)
    target_object = resolve_target(model, target, task)
    samples = int(smooth_samples)

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

    return run(images).numpy()


def integrated_gradients(model: keras.Model, images: Any, target: Any = None,
                         baseline: Any = 0.0, steps: int = 32, task: Any = None,
                         jit_compile: bool = False) -> np.ndarray:
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

    Returns:
        float32 `[B, H, W, C]` attributions.
    """
    images = check_images(images, model)
    target_object = resolve_target(model, target, task)
    base = tf.broadcast_to(tf.cast(baseline, tf.float32), tf.shape(images))
    intervals = int(steps)
    if intervals < 1:
        raise ValueError(f"Expected steps >= 1; received steps={steps}.")

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

    return run(images, base).numpy()


def fgsm(model: keras.Model, images: Any, target: Any = None, epsilon: float = 8.0,
         task: Any = None) -> dict[str, np.ndarray]:
    """Fast-gradient-sign adversarial examples that lower the target's score.

    Args:
        model: a Keras model on raw 0..255 pixels.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s) to push down, a `Target`, or None (the predicted class).
        epsilon: the perturbation's size in pixel units (0..255 scale). Defaults to 8.
        task: task for the target.

    Returns:
        A dict of NumPy arrays: `adversarial` images (clipped to 0..255), `perturbation`
        (adversarial - original), `original_class` and `adversarial_class` (`[B]`, the
        class the target object explains before and after), and `flipped` (`[B]` bool).
    """
    images = check_images(images, model)
    target_object = resolve_target(model, target, task)

    @tf.function
    def run(images):
        state = target_object.prepare(model(images, training=False))
        gradients, _ = _input_gradients(model, target_object, images, state)
        adversarial = tf.clip_by_value(images - epsilon * tf.sign(gradients), 0.0, 255.0)
        after = target_object.prepare(model(adversarial, training=False))
        return adversarial, target_object.classes(state), target_object.classes(after)

    adversarial, before, after = (t.numpy() for t in run(images))
    return {"adversarial": adversarial, "perturbation": adversarial - images.numpy(),
            "original_class": before, "adversarial_class": after, "flipped": before != after}
