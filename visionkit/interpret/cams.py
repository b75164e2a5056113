"""The class activation map (CAM) family beyond Grad-CAM, batched over images.

Each method weighs the channels of a spatial layer's activations `A` `[B, h, w, K]`
(nested layers allowed, any input shape), and returns maps upsampled bilinearly to the
input `[B, H, W]`, scaled per image to 0..1 unless `normalize=False`. With `g` the
gradient of the target's score (a classifier's logit when the head's pre-activation is
reachable, as `grad_cam` does) with respect to `A`:

- `grad_cam_plus_plus`: `w_k = sum_ij alpha_ijk relu(g_ijk)` with
  `alpha = g^2 / (2 g^2 + sum_ab A_abk g^3)` (0 where the denominator is 0), the
  closed form for an exponential score; map `relu(sum_k w_k A_k)`.
- `hires_cam`: `relu(sum_k g_k * A_k)`, the element-wise product (no spatial pooling of
  the gradient), so the map is faithful to the score for a model ending in global
  average pooling and a Dense layer.
- `layer_cam`: per layer `relu(sum_k relu(g_k) * A_k)`, over several layers: each layer's
  map is upsampled and scaled to 0..1, then the layers are fused by their element-wise
  maximum.
- `score_cam`: gradient-free; each channel, upsampled and scaled to 0..1, masks the
  image (`image * mask_k`); the target's score on every masked copy, put through a
  softmax over the channels, weighs the channels: `relu(sum_k w_k A_k)`. All masked
  copies go through the model in batches of `batch_size`.
- `eigen_cam`: gradient-free and target-free; the projection of the activations
  (centred over positions) on their first principal component, the sign chosen so that
  the component's channel weights sum to >= 0. It needs no target, so it works on
  detectors and models with several outputs.

References:
    - [Grad-CAM++](https://arxiv.org/abs/1710.11063) (Chattopadhyay et al., WACV 2018)
    - [Use HiResCAM instead of Grad-CAM](https://arxiv.org/abs/2011.08891) (Draelos &
      Carin, 2020)
    - [LayerCAM](https://doi.org/10.1109/TIP.2021.3089943) (Jiang et al., IEEE TIP 2021)
    - [Score-CAM](https://arxiv.org/abs/1910.01279) (Wang et al., CVPR-W 2020)
    - [Eigen-CAM](https://arxiv.org/abs/2008.00299) (Muhammad & Yeasin, IJCNN 2020)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 24, 32, 3)).astype("float32")
>>> grad_cam_plus_plus(model, images, target=0).shape
(2, 24, 32)
>>> layer_cam(model, images, layers=["relu1", "relu2"]).shape
(2, 24, 32)
>>> eigen_cam(model, images).shape
(2, 24, 32)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.attributions import _default_cam_layer
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_int
from visionkit.interpret.targets import ClassScore

__all__ = ["eigen_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam", "score_cam"]


def _checked(maps: np.ndarray, method: str) -> np.ndarray:
    """`maps` checked finite; constant maps (no position stands out: for the gradient
    methods, no channel raises the target's score there) are said once, with examples."""
    maps = check_finite_result(maps, method)
    flat = maps.reshape(len(maps), -1)
    flat_maps = np.flatnonzero(np.ptp(flat, axis=1) == 0)
    if len(flat_maps):
        warnings.warn(f"{method}: {len(flat_maps)} of {len(maps)} maps are constant (the "
                      f"map holds no evidence for the target at this layer; try another "
                      f"layer or target), e.g. images {flat_maps[:5].tolist()}.",
                      stacklevel=3)
    return maps


def _normalize(maps: tf.Tensor) -> tf.Tensor:
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return (maps - low) / tf.maximum(high - low, 1e-12)


def _upsample(maps: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """`[B, h, w]` maps resized bilinearly to the images' `[B, H, W]`."""
    return tf.image.resize(maps[..., None], tf.shape(images)[1:3], "bilinear")[..., 0]


def _layers(adapter, layers: Any) -> list[str]:
    if layers is None:
        return [_default_cam_layer(adapter)]
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ArgumentError("layers", "Expected at least one layer name; received "
                            f"layers={layers!r}.")
    for name in names:
        adapter.check_spatial_layer(name, "layers" if len(names) > 1 else "layer")
    return names


def _setup(model, images, target, layers, task, output):
    """The adapter, checked images, the scorer (on logits for a classifier whose
    pre-activation is reachable) and a feature model `[layer maps..., scored output]`."""
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    target_object = adapter.target(target, task, int(images.shape[0]))
    names = _layers(adapter, layers)
    logits = adapter.head.pre_activation is not None and isinstance(target_object, ClassScore)
    scorer = target_object.on_logits() if logits else target_object
    extractor = adapter.feature_model(names, logits=logits)
    return images, scorer, extractor, len(names)


def _gradient_cam(kind: str, model, images, target, layers, task, normalize, jit_compile,
                  output) -> np.ndarray:
    images, scorer, extractor, count = _setup(model, images, target, layers, task, output)

    @tf.function(jit_compile=jit_compile)
    def run(images):
        with tf.GradientTape() as tape:
            results = extractor(images, training=False)
            features, outputs = list(results[:count]), results[count]
            score = scorer.score(outputs, scorer.prepare(outputs))
        gradients = tape.gradient(score, features)
        fused = None
        for activation, gradient in zip(features, gradients):
            activation = tf.cast(activation, tf.float32)
            gradient = tf.cast(gradient, tf.float32)
            if kind == "plus_plus":
                squared, cubed = tf.square(gradient), gradient * tf.square(gradient)
                total = tf.reduce_sum(activation, axis=[1, 2], keepdims=True)
                denominator = 2.0 * squared + total * cubed
                alpha = tf.math.divide_no_nan(squared, denominator)
                weights = tf.reduce_sum(alpha * tf.nn.relu(gradient), axis=[1, 2],
                                        keepdims=True)
                cam = tf.reduce_sum(weights * activation, axis=-1)
            elif kind == "hires":
                cam = tf.reduce_sum(gradient * activation, axis=-1)
            else:  # LayerCAM
                cam = tf.reduce_sum(tf.nn.relu(gradient) * activation, axis=-1)
            cam = _upsample(tf.nn.relu(cam), images)
            if kind == "layer" and count > 1:
                cam = _normalize(cam)
                fused = cam if fused is None else tf.maximum(fused, cam)
            else:
                fused = cam
        return _normalize(fused) if normalize else fused

    names = {"plus_plus": "grad_cam_plus_plus", "hires": "hires_cam", "layer": "layer_cam"}
    return _checked(run(images).numpy(), names[kind])


def grad_cam_plus_plus(model: keras.Model, images: Any, target: Any = None,
                       layer: str | None = None, task: Any = None, normalize: bool = True,
                       jit_compile: bool = False,
                       output: str | int | None = None) -> np.ndarray:
    """Grad-CAM++ maps (Chattopadhyay et al. 2018): positive gradients weighted per
    position by the closed-form `alpha` of an exponential score.

    Args:
        model: a Keras model (Sequential, functional, subclassed, nested sub-models).
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        layer: the spatial layer (nested names allowed). Defaults to Grad-CAM's layer.
        task: task for the target (None: asked from the model's outputs).
        normalize: scale each map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 NumPy `[B, H, W]`.

    Raises:
        ArgumentError (a ValueError): naming `layer`, `images`, `target` or `output`.
    """
    return _gradient_cam("plus_plus", model, images, target, layer, task, normalize,
                         jit_compile, output)


def hires_cam(model: keras.Model, images: Any, target: Any = None, layer: str | None = None,
              task: Any = None, normalize: bool = True, jit_compile: bool = False,
              output: str | int | None = None) -> np.ndarray:
    """HiResCAM maps (Draelos & Carin 2020): `relu(sum_k gradient_k * activation_k)`.

    Args and Returns as `grad_cam_plus_plus`.

    Raises:
        ArgumentError (a ValueError): naming `layer`, `images`, `target` or `output`.
    """
    return _gradient_cam("hires", model, images, target, layer, task, normalize,
                         jit_compile, output)


def layer_cam(model: keras.Model, images: Any, target: Any = None,
              layers: Sequence[str] | str | None = None, task: Any = None,
              normalize: bool = True, jit_compile: bool = False,
              output: str | int | None = None) -> np.ndarray:
    """LayerCAM maps (Jiang et al. 2021) over one or several layers.

    Per layer `relu(sum_k relu(gradient_k) * activation_k)`, upsampled to the input; with
    several layers each is scaled to 0..1 and they are fused by the element-wise maximum
    (shallow layers add the fine detail, deep ones the object).

    Args:
        model: a Keras model.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        layers: a layer name or a list of them (nested names allowed). Defaults to
            Grad-CAM's layer alone.
        task: task for the target.
        normalize: scale each fused map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 NumPy `[B, H, W]`.

    Raises:
        ArgumentError (a ValueError): naming `layers` (empty, unknown or not spatial),
            `images`, `target` or `output`.
    """
    return _gradient_cam("layer", model, images, target, layers, task, normalize,
                         jit_compile, output)


def score_cam(model: keras.Model, images: Any, target: Any = None, layer: str | None = None,
              batch_size: int = 256, task: Any = None, normalize: bool = True,
              jit_compile: bool = False, output: str | int | None = None) -> np.ndarray:
    """Score-CAM maps (Wang et al. 2020): channels weighted by the score of the image
    masked by each upsampled channel.

    Each channel `A_k`, upsampled to the input and scaled to 0..1 (a constant channel
    gives a zero mask), multiplies the image; the target's score on each of the `K`
    masked copies (the logit for a classifier whose pre-activation is reachable, else the
    target's score) goes through a softmax over the channels to give the weights; the
    map is `relu(sum_k w_k A_k)` upsampled. All `B * K` copies are scored `batch_size`
    at a time inside one compiled loop.

    Args:
        model: a Keras model.
        images: `[B, H, W, C]` raw pixels.
        target: class id(s), a `Target`, or None (predicted class).
        layer: the spatial layer. Defaults to Grad-CAM's layer.
        batch_size: masked copies per forward pass, >= 1. Defaults to 256.
        task: task for the target.
        normalize: scale each map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 NumPy `[B, H, W]`.

    Raises:
        ArgumentError (a ValueError): naming `layer`, `batch_size`, `images`, `target`
            or `output`.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    images, scorer, extractor, _ = _setup(model, images, target, layer, task, output)

    @tf.function(jit_compile=jit_compile)
    def run(images):
        features, outputs = extractor(images, training=False)
        features = tf.cast(features, tf.float32)
        state = scorer.prepare(outputs)
        masks = tf.image.resize(features, tf.shape(images)[1:3], "bilinear")  # [B,H,W,K]
        masks = tf.transpose(_normalize_channels(masks), [0, 3, 1, 2])  # [B, K, H, W]
        channels = tf.shape(masks)[1]
        total = tf.shape(images)[0] * channels
        chunks = (total + batch_size - 1) // batch_size
        scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
        for chunk in tf.range(chunks):
            index = tf.minimum(chunk * batch_size + tf.range(batch_size), total - 1)
            image_index, channel = index // channels, index % channels
            mask = tf.gather_nd(masks, tf.stack([image_index, channel], axis=-1))
            copies = tf.gather(images, image_index) * mask[..., None]
            chunk_state = tuple(tf.gather(t, image_index) for t in state)
            scores = scores.write(chunk, scorer.score(extractor(copies, training=False)[1],
                                                      chunk_state))
        scores = tf.reshape(scores.concat()[:total], [-1, channels])
        weights = tf.nn.softmax(scores, axis=-1)[:, None, None, :]
        cam = _upsample(tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)), images)
        return _normalize(cam) if normalize else cam

    return _checked(run(images).numpy(), "score_cam")


def _normalize_channels(masks: tf.Tensor) -> tf.Tensor:
    """Each channel of `[B, H, W, K]` scaled to 0..1 over its pixels (constant: 0)."""
    low = tf.reduce_min(masks, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2], keepdims=True)
    return tf.math.divide_no_nan(masks - low, high - low)


def eigen_cam(model: keras.Model, images: Any, layer: str | None = None,
              normalize: bool = True, jit_compile: bool = False,
              output: str | int | None = None) -> np.ndarray:
    """EigenCAM maps (Muhammad & Yeasin 2020): the first principal component of a layer's
    activations, gradient-free and without a target.

    The activations `[h*w, K]` of each image, centred over the positions, are projected
    on the eigenvector of their `K x K` scatter matrix with the largest eigenvalue (the
    first right singular vector; computed in float64), signed so that its channel
    weights sum to >= 0 (a principal component has no sign of its own).

    Args:
        model: a Keras model: a classifier, segmenter, a detector or a model with several
            outputs (no output is scored).
        images: `[B, H, W, C]` raw pixels.
        layer: the spatial layer. Defaults to Grad-CAM's layer.
        normalize: scale each map to 0..1. Defaults to True.
        jit_compile: compile with XLA. Defaults to False.
        output: accepted for symmetry with the other methods; not used for scoring.

    Returns:
        float32 NumPy `[B, H, W]`.

    Raises:
        ArgumentError (a ValueError): naming `layer` or `images`.
    """
    adapter = adapt(model, output, require_output=False)
    images = adapter.check_images(images)
    name = _layers(adapter, layer)
    extractor = adapter.feature_model(name, include_output=False)

    @tf.function(jit_compile=jit_compile)
    def run(images):
        features = extractor(images, training=False)
        features = features[0] if isinstance(features, (list, tuple)) else features
        features = tf.cast(features, tf.float64)
        shape = tf.shape(features)
        flat = tf.reshape(features, [shape[0], shape[1] * shape[2], shape[3]])
        centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
        scatter = tf.matmul(centred, centred, transpose_a=True)  # [B, K, K]
        _, vectors = tf.linalg.eigh(scatter)
        component = vectors[:, :, -1]  # the largest eigenvalue's vector, [B, K]
        sign = tf.where(tf.reduce_sum(component, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        component = component * tf.cast(sign, tf.float64)
        projection = tf.einsum("bpk,bk->bp", centred, component)
        cam = tf.cast(tf.reshape(projection, shape[:3]), tf.float32)
        cam = _upsample(cam, images)
        return _normalize(cam) if normalize else cam

    return _checked(run(images).numpy(), "eigen_cam")
