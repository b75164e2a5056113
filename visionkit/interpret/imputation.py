"""Noisy linear imputation (ROAD): hidden pixels filled from their neighbours.

Each hidden pixel takes the weighted mean of its 8 neighbours (weight 1/6 for the 4
direct ones, 1/12 for the diagonals, Rong et al. 2022), the known pixels staying fixed:
the hidden values solve the sparse linear system `sum_j w_ij (x_i - x_j) = 0` (a
weighted graph Laplacian restricted to the hidden pixels, symmetric positive definite
when each hidden region touches a known pixel). It is solved matrix-free by conjugate
gradients, batched over images and channels, as graph code (a 3x3 depthwise convolution
applies the matrix), then Gaussian noise is added to the imputed pixels. Unlike a
constant fill, the result carries no outline of the hidden region, so a model cannot
read the removed shape from the edge of the fill.

Reference:
    - [A Consistent and Efficient Evaluation Strategy for Attribution Methods](
      https://arxiv.org/abs/2202.00449) (Rong et al., ICML 2022)

Example:

>>> import numpy as np
>>> image = np.tile(np.arange(8, dtype="float32")[None, :, None], (8, 1, 3))[None] * 10
>>> hidden = np.zeros((1, 8, 8), bool); hidden[0, 2:6, 3:5] = True
>>> filled = noisy_linear_imputation(image, hidden, noise=0.0)
>>> bool(np.abs(filled - image).max() < 0.01)  # a linear ramp is its own imputation
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.interpret.checks import ArgumentError, check_float, check_int

__all__ = ["impute", "noisy_linear_imputation"]

# Neighbour weights of the paper: direct neighbours 1/6, diagonal ones 1/12.
_NEIGHBOURS = np.array([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]],
                       np.float32)
# Conjugate-gradient stop: every residual below this (pixel levels), or MAX_ITERATIONS.
TOLERANCE = 1e-3
MAX_ITERATIONS = 2000


def _neighbour_sum(values: tf.Tensor) -> tf.Tensor:
    """Weighted sum of each pixel's in-image neighbours, `[N, H, W, C]`."""
    channels = tf.shape(values)[-1]
    kernel = tf.tile(tf.constant(_NEIGHBOURS)[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(values, kernel, [1, 1, 1, 1], "SAME")


# Coarsening levels of the first guess when the image size is not known at trace time
# (a function traced for any size): 2**16 pixels is larger than any image fed here, and
# a level past a 1x1 block costs one more 1x1 pooling.
_UNKNOWN_SIZE_LEVELS = 16


def _levels(values: tf.Tensor) -> int:
    """How many 2x2 coarsenings take `values` `[N, H, W, C]` to a single block."""
    height, width = values.shape[1], values.shape[2]
    if height is None or width is None:
        return _UNKNOWN_SIZE_LEVELS
    return int(np.ceil(np.log2(max(height, width, 1))))


def _push_pull(values: tf.Tensor, weights: tf.Tensor, levels: int) -> tf.Tensor:
    """A smooth first guess of the hidden pixels: known pixels averaged over ever
    coarser 2x2 blocks (`levels` times, a Python int so the recursion ends at trace
    time whatever the traced shape), then each hidden pixel takes the finest average
    that has data (the conjugate gradients then converge in a few dozen steps, not
    hundreds)."""
    if levels <= 0:
        return tf.math.divide_no_nan(
            tf.reduce_sum(values, axis=[1, 2], keepdims=True) + 0.0 * values,
            tf.reduce_sum(weights, axis=[1, 2], keepdims=True))
    size = tf.shape(values)[1:3]
    coarse_values = tf.nn.avg_pool2d(values, 2, 2, "SAME")
    coarse_weights = tf.nn.avg_pool2d(weights, 2, 2, "SAME")
    coarse = _push_pull(coarse_values, coarse_weights, levels - 1)
    filled = tf.math.divide_no_nan(coarse_values, coarse_weights)
    coarse = tf.where(coarse_weights > 0, filled, coarse)
    upsampled = tf.image.resize(coarse, size, "bilinear")
    return tf.where(weights > 0, tf.math.divide_no_nan(values, weights), upsampled)


def impute(images: tf.Tensor, hidden: tf.Tensor, noise: float, seed: tf.Tensor) -> tf.Tensor:
    """Graph code: `images` `[N, H, W, C]` float32 with the pixels where `hidden`
    `[N, H, W]` (float 0/1) is 1 replaced by noisy linear imputation; `noise` is the
    standard deviation in pixel levels; `seed` a stateless seed `[2]` int32."""
    hidden = tf.cast(hidden, tf.float32)[..., None]
    known = 1.0 - hidden
    hidden = tf.broadcast_to(hidden, tf.shape(images))
    known = tf.broadcast_to(known, tf.shape(images))
    degree = _neighbour_sum(tf.ones_like(images))

    def apply(values):
        return hidden * (degree * values - _neighbour_sum(values * hidden))

    def dot(a, b):
        return tf.reduce_sum(a * b, axis=[1, 2], keepdims=True)

    rhs = hidden * _neighbour_sum(images * known)
    x = hidden * _push_pull(images * known, known, _levels(images))
    residual = rhs - apply(x)
    direction = residual
    norm = dot(residual, residual)

    def keep_going(step, x, residual, direction, norm):
        return (step < MAX_ITERATIONS) & (tf.reduce_max(tf.abs(residual)) > TOLERANCE)

    def iterate(step, x, residual, direction, norm):
        product = apply(direction)
        alpha = tf.math.divide_no_nan(norm, dot(direction, product))
        x = x + alpha * direction
        residual = residual - alpha * product
        new_norm = dot(residual, residual)
        direction = residual + tf.math.divide_no_nan(new_norm, norm) * direction
        return step + 1, x, residual, direction, new_norm

    _, x, _, _, _ = tf.while_loop(keep_going, iterate, (0, x, residual, direction, norm))
    jitter = noise * tf.random.stateless_normal(tf.shape(images), seed=seed)
    return images * known + hidden * (x + jitter)


_compiled_impute = tf.function(impute, reduce_retracing=True)


def noisy_linear_imputation(images: Any, hidden: Any, noise: float = 0.01,
                            seed: int = 0) -> np.ndarray:
    """Fills the hidden pixels of images by noisy linear imputation (Rong et al. 2022).

    Args:
        images: `[B, H, W, C]` pixels (any scale; visionkit's are 0..255).
        hidden: `[B, H, W]` (or `[H, W]`) bool, True where a pixel is removed.
        noise: standard deviation of the Gaussian noise added to the imputed pixels, as a
            fraction of 255 (the paper's 0.01 on a 0..1 scale). Defaults to 0.01.
        seed: noise seed, >= 0. Defaults to 0.

    Returns:
        float32 NumPy `[B, H, W, C]`: known pixels unchanged, hidden ones imputed.

    Raises:
        ArgumentError (a ValueError): naming `images` (not `[B, H, W, C]`), `hidden`
            (a shape other than the images' `[B, H, W]` or `[H, W]`), `noise` or `seed`.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ArgumentError("images", f"Expected images [batch, height, width, channels]; "
                            f"received shape {images.shape}.")
    hidden = np.asarray(hidden).astype(bool)
    if hidden.shape not in (images.shape[:3], images.shape[1:3]):
        raise ArgumentError("hidden", f"Expected hidden of shape {images.shape[:3]} or "
                            f"{images.shape[1:3]}; received {hidden.shape}.")
    noise = check_float(noise, "noise", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0)
    hidden = np.broadcast_to(hidden, images.shape[:3]).astype(np.float32)
    result = _compiled_impute(tf.constant(images), tf.constant(hidden),
                              tf.constant(noise * 255.0), tf.constant([seed, 0]))
    return result.numpy()
