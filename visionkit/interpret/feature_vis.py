"""Natural feature images: activation maximization in a decorrelated Fourier basis.

Plain pixel ascent climbs the steepest direction in pixel space, which is dominated by
high frequencies: the pictures come out as fine colour noise. Olah et al. (2017) move the
optimization into a basis where those directions are no longer cheap:

- **1/f spectral scaling**: the image is the inverse real FFT of a learned spectrum whose
  coefficients are scaled by `1 / max(|f|, 1/max(h, w))` (frequency in cycles per pixel),
  so a unit step changes every frequency by about the amount natural images carry.
- **Colour decorrelation**: the three channels are a fixed linear mix (the square root
  of ImageNet's colour covariance, Lucid's `color_correlation_svd_sqrt`, or of the
  user's own images' through `colour_decorrelation`) of decorrelated channels.
- **Valid pixels**: the result is brought into 0..255 by clipping, whose gradient passes
  through except where a pixel at a bound is pushed further out (`squash="clip"`,
  Lucid's `to_valid_rgb(..., sigmoid=False)` with its `constrain_L_inf`), or by a
  sigmoid (`squash="sigmoid"`, Lucid's default). Clipping reaches saturated colours at
  the pace of pixel ascent, which clips too; a sigmoid reaches them only as its
  gradient vanishes.
- **Transformation robustness**: each of the first half of the steps scores a randomly
  translated, scaled and rotated copy of each image (one batched projective transform,
  reflecting at the borders), so the image must work under all of them; the rest refine
  it on its own pixel grid, as pixel ascent's jitter does.
- **Diversity** (optional): several images per filter, penalized by the cosine
  similarity of their Gram matrices at the layer, so they show different facets.

Measured against pixel ascent (same 64 steps, each at its defaults, filters 0-7, mean
activation ratio; top-half spectral energy share, pixel ascent's in brackets): a
simple_cnn on colour shapes (relu4, 48x48) 1.09x at 0.67 (0.79); the digits CNN (relu3,
16x16) 1.04x at 0.70 (0.80). With the sigmoid they were 0.79x at 0.30 and 0.77x at
0.47: the sigmoid gives smoother images at a lower activation (and wins at few steps:
16 steps on the colour model, 1.38x against clipping's 1.00x). The clipping's price is
visible: 43% of the colour model's pixels end saturated (0 or 255) against 3% with the
sigmoid and 22% with pixel ascent, and its pictures look closer to pixel ascent's.

The parameters follow Adam (written out as loop tensors so the whole optimization is one
`tf.function` with no variables), restarted when the transformations stop, since the
objective changes there. Image `i` of a batch maximizes the mean activation of
filter `i`, as in `filters`.

Reference:
    - [Feature Visualization](https://distill.pub/2017/feature-visualization/) (Olah,
      Mordvintsev & Schubert, Distill 2017), its "Preconditioning and Parameterization"
      and "Diversity" sections.
    - Lucid, `lucid/optvis/param/spatial.py` (`fft_image`) and
      `lucid/optvis/param/color.py` (the colour correlation matrix and `to_valid_rgb`),
      `lucid/optvis/param/unit_balls.py` (`constrain_L_inf`).

Example:

>>> import visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> vk.interpret.filters(model, "conv2", range(2), steps=2, parameterization="fourier",
...                      verbose=0).shape
(2, 24, 32, 3)
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

__all__ = ["COLOR_CORRELATION_SVD_SQRT", "SQUASHES", "colour_decorrelation",
           "fourier_ascent_graph", "high_frequency_share", "spectrum_scale"]

SQUASHES = ("clip", "sigmoid")  # how the parameterization is brought into 0..255

# The square root of ImageNet's RGB colour covariance (rows: R, G, B; columns: the
# decorrelated components), from Lucid `lucid/optvis/param/color.py`.
COLOR_CORRELATION_SVD_SQRT = np.asarray([[0.26, 0.09, 0.02],
                                         [0.27, 0.00, -0.05],
                                         [0.27, -0.09, 0.03]], dtype=np.float32)


def _normalized_mix(matrix: np.ndarray) -> np.ndarray:
    """The mix scaled so that its largest column has unit norm (as Lucid does)."""
    return (matrix / np.max(np.linalg.norm(matrix, axis=0))).astype(np.float32)


def colour_decorrelation(images) -> np.ndarray:
    """The square root of the colour covariance of `images`, as Lucid's ImageNet matrix.

    `filters(..., parameterization="fourier", decorrelate=colour_decorrelation(images))`
    decorrelates the colours with the statistics of the model's own training data
    instead of ImageNet's (`COLOR_CORRELATION_SVD_SQRT`). The covariance of the RGB
    values (in 0..1) over every pixel is factored as `U diag(s) U^T` (SVD) and the
    matrix is `U diag(sqrt(s))`, so `M @ M.T` is the covariance (rows: R, G, B; columns:
    the decorrelated components, strongest first).

    Measured on a simple_cnn trained on `vk.data.shapes` (whose colours are random and
    nearly uncorrelated: this matrix is close to a rotation), relu4, 64 steps, against
    pixel ascent's activation (statistics of 320 training images): with
    `squash="sigmoid"` 0.90x against 0.79x with ImageNet's matrix (top-half spectral
    share 0.33; pixel ascent 0.79); with the default clipping 0.96x against 1.09x
    (share 0.73): ImageNet's matrix, which moves colour slower than brightness, suits the
    clipping better on this model.

    Args:
        images: `[N, H, W, 3]` pixels in 0..255 (NumPy or tensor), e.g. a sample of the
            training set, or one image `[H, W, 3]`.

    Returns:
        float32 `[3, 3]`.

    Raises:
        ArgumentError (a ValueError): naming `images` when they are not `[N, H, W, 3]`
            or `[H, W, 3]` (greyscale images are named as such), not finite, or of one
            colour (no covariance to factor).

    Warns:
        UserWarning: for images whose values lie within 0..1 (scaled, not 0..255).
    """
    from visionkit.interpret.checks import ArgumentError, warn_scaled_pixels

    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 3 and array.shape[-1] == 3:
        array = array[np.newaxis]  # one image
    if array.ndim == 4 and array.shape[-1] == 1:
        raise ArgumentError("images", f"Greyscale images (shape {array.shape}) have no "
                            "colours to decorrelate; filters on a one-channel model "
                            "takes decorrelate=None.")
    if array.ndim != 4 or array.shape[-1] != 3 or array.size == 0:
        raise ArgumentError("images", f"Expected images [N, H, W, 3] or one image "
                            f"[H, W, 3] (RGB pixels in 0..255); received shape "
                            f"{array.shape}.")
    if not np.isfinite(array).all():
        raise ArgumentError("images", "Expected finite pixels; received NaN or inf.")
    warn_scaled_pixels(array, consequence=": the matrix comes out as many times too small "
                       "(filters' use of it is unchanged: it normalizes the matrix)")
    covariance = np.cov(array.reshape(-1, 3) / 255.0, rowvar=False)
    if np.trace(covariance) <= 0:
        raise ArgumentError("images", "Expected images with more than one colour; "
                            "received images whose every pixel is the same.")
    u, s, _ = np.linalg.svd(covariance)
    return (u * np.sqrt(np.maximum(s, 0.0))).astype(np.float32)


_INIT_STD = 0.01  # standard deviation of the start spectrum (Lucid's default): near grey
_SPECTRUM_DIVISOR = 4.0  # Lucid's fixed scaling of the image out of the inverse FFT
# Fraction of the steps (the first ones) scored under random transformations; the rest
# refine the image on its own pixel grid, where it is measured (as pixel ascent does with
# its jitter, `filters.JITTER_FRACTION`).
TRANSFORM_FRACTION = 0.5
_ADAM_BETAS = (0.9, 0.999)  # Adam's defaults (Kingma & Ba, 2015)
_ADAM_EPSILON = 1e-8


def _frequencies(height: int, width: int) -> np.ndarray:
    """Radial frequency (cycles per pixel) of each rfft2d coefficient `[h, w//2+1]`."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> np.ndarray:
    """The 1/f scale of each rfft2d coefficient, `[h, w//2+1]` float32 (Lucid's `fft_image`).

    The constant term gets the scale of the lowest non-zero frequency; the scale is
    multiplied by `sqrt(h*w)` so an inverse FFT of unit coefficients has unit variance.
    """
    frequencies = _frequencies(height, width)
    scale = 1.0 / np.maximum(frequencies, 1.0 / max(height, width)) ** decay_power
    return (scale * math.sqrt(height * width)).astype(np.float32)


def high_frequency_share(images: np.ndarray) -> np.ndarray:
    """Share of each image's spectral energy in the top half of the frequencies.

    The energy is the squared magnitude of the 2D FFT of each channel after subtracting
    its mean; "top half" is the radial frequency above a quarter cycle per pixel (half of
    the Nyquist frequency, 0.5).

    Args:
        images: `[N, H, W, C]` pixels (any range).

    Returns:
        float64 `[N]` in [0, 1].
    """
    array = np.asarray(images, dtype=np.float64)
    array = array - array.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(array, axes=(1, 2))) ** 2
    fy = np.fft.fftfreq(array.shape[1])[:, None]
    fx = np.fft.fftfreq(array.shape[2])[None, :]
    high = np.sqrt(fx * fx + fy * fy) > 0.25
    total = power.sum(axis=(1, 2, 3))
    return power[:, high].sum(axis=(1, 2)) / np.maximum(total, 1e-12)


@tf.custom_gradient
def _clip_for_ascent(x: tf.Tensor):
    """`x / max(1, |x|)`: `x` clipped to [-1, 1] (Lucid's `constrain_L_inf`).

    The gradient of the objective being maximized passes through unchanged, except
    where `x` is at or past a bound and the gradient pushes it further out (zero there):
    a clipped pixel comes back as soon as the objective wants it to, and one the
    objective keeps pushing out does not drift further away.
    """
    def gradient(upstream):
        stuck = tf.logical_and(tf.abs(x) >= 1.0, x * upstream > 0)
        return tf.where(stuck, tf.zeros_like(upstream), upstream)

    return x / tf.maximum(1.0, tf.abs(x)), gradient


def _to_image(spectrum: tf.Tensor, scale: tf.Tensor, height: int, width: int,
              decorrelate: bool, mix=None, squash: str = "clip") -> tf.Tensor:
    """Spectrum `[2, B, C, h, w//2+1]` (real, imaginary) -> pixels `[B, H, W, C]` in 0..255."""
    complex_spectrum = tf.complex(spectrum[0] * scale, spectrum[1] * scale)
    image = tf.signal.irfft2d(complex_spectrum, fft_length=[height, width])
    image = tf.transpose(image, [0, 2, 3, 1]) / _SPECTRUM_DIVISOR
    if decorrelate:
        mix = _normalized_mix(COLOR_CORRELATION_SVD_SQRT) if mix is None else mix
        image = tf.einsum("bhwc,dc->bhwd", image, tf.cast(mix, image.dtype))
    if squash == "sigmoid":
        return 255.0 * tf.sigmoid(image)
    # Lucid's to_valid_rgb(sigmoid=False): constrain_L_inf(2 t - 1) / 2 + 1/2 with the
    # colour mean in t; here the mean is grey (t = 0 gives 127.5).
    return 255.0 * (_clip_for_ascent(2.0 * image) / 2.0 + 0.5)


def _random_transforms(batch, height, width, key, jitter, scale, rotate) -> tf.Tensor:
    """Projective transforms `[B, 8]` (output -> input coordinates) of a random
    translation (pixels), scaling and rotation (degrees) about each image's centre."""
    keys = [tf.stack([key[0], key[1] * 3 + k]) for k in range(3)]
    shift = tf.random.stateless_uniform([batch, 2], keys[0], -jitter, jitter)
    zoom = tf.random.stateless_uniform([batch], keys[1], 1.0 - scale, 1.0 + scale)
    angle = tf.random.stateless_uniform([batch], keys[2], -rotate, rotate) * (math.pi / 180)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    # input = R(-angle)/zoom (output - centre) + centre - shift
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * cx - a1 * cy - shift[:, 0]
    b2 = cy - b0 * cx - b1 * cy - shift[:, 1]
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _reflect(coordinate: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """Coordinates outside [0, length - 1] reflected back inside, as TensorFlow's
    `ImageProjectiveTransformV3` does with `fill_mode="REFLECT"` (d c b a | a b c d)."""
    period = 2.0 * length
    low = period * tf.math.floordiv(-coordinate, period) + coordinate
    low = tf.where(low < -length, low + period, -low - 1.0)
    high = coordinate - period * tf.floor(coordinate / period)
    high = tf.where(high >= length, period - high - 1.0, high)
    inside = tf.where(coordinate < 0, low, tf.where(coordinate > length - 1, high, coordinate))
    return tf.clip_by_value(inside, 0.0, length - 1.0)


def _transform(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """`images` `[B, H, W, C]` resampled bilinearly through the affine `transforms`
    `[B, 8]` (output -> input pixel coordinates), reflecting at the borders."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def _transform_compilable(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """`_transform` written with gathers, so that XLA compiles it (`jit_compile=True`:
    `ImageProjectiveTransformV3` has no XLA kernel). The same result for affine
    transforms; the op is kept without XLA, where it is about 20% faster per step."""
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    rows, columns = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    a0, a1, a2, b0, b1, b2 = (transforms[:, k, None, None] for k in range(6))
    x = _reflect(a0 * columns + a1 * rows + a2, width)  # [B, H, W]
    y = _reflect(b0 * columns + b1 * rows + b2, height)
    x0, y0 = tf.floor(x), tf.floor(y)
    x1 = tf.minimum(x0 + 1.0, width - 1.0)
    y1 = tf.minimum(y0 + 1.0, height - 1.0)

    def read(row, column):
        index = tf.stack([tf.cast(row, tf.int32), tf.cast(column, tf.int32)], axis=-1)
        return tf.gather_nd(images, index, batch_dims=1)

    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    top = read(y0, x0) * (1.0 - wx) + read(y0, x1) * wx
    bottom = read(y1, x0) * (1.0 - wx) + read(y1, x1) * wx
    return top * (1.0 - wy) + bottom * wy


def _gram_similarity(features: tf.Tensor, groups: int, per_group: int) -> tf.Tensor:
    """Mean pairwise cosine similarity of the Gram matrices within each group `[groups]`."""
    batch, height, width, channels = (tf.shape(features)[i] for i in range(4))
    flat = tf.reshape(features, [batch, height * width, channels])
    gram = tf.linalg.matmul(flat, flat, transpose_a=True)
    gram = tf.math.l2_normalize(tf.reshape(gram, [groups, per_group, -1]), axis=-1)
    similarity = tf.linalg.matmul(gram, gram, transpose_b=True)  # [G, n, n]
    off_diagonal = tf.reduce_sum(similarity, axis=[1, 2]) - tf.linalg.trace(similarity)
    return off_diagonal / float(per_group * (per_group - 1))


def fourier_ascent_graph(extractor, height: int, width: int, channels: int,
                         decorrelate: bool, per_filter: int, jit_compile: bool,
                         squash: str = "clip"):
    """A `tf.function(ids, seed, steps, learning_rate, jitter, scale, rotate, diversity,
    mix=None) -> images [B, H, W, C]` running the whole optimization.

    `mix` is the normalized `[3, 3]` colour matrix (None: ImageNet's); `squash` one of
    `SQUASHES`.

    `ids` `[B]` holds each image's filter (`per_filter` consecutive images per filter).
    The step count, learning rate, transformation ranges and diversity weight are tensors,
    so one trace serves every setting of them.
    """
    scale_tensor = tf.constant(spectrum_scale(height, width))
    beta1, beta2 = _ADAM_BETAS

    def run(ids, seed, steps, learning_rate, jitter, scale, rotate, diversity, mix=None):
        batch = tf.shape(ids)[0]
        # round half to even, as Python's round
        transformed_steps = tf.cast(tf.round(tf.cast(steps, tf.float32) * TRANSFORM_FRACTION),
                                    tf.int32)
        spectrum = _INIT_STD * tf.random.stateless_normal(
            [2, batch, channels, height, width // 2 + 1], tf.stack([seed, -1]))
        def ascend(step, spectrum, first, second):
            with tf.GradientTape() as tape:
                tape.watch(spectrum)
                images = _to_image(spectrum, scale_tensor, height, width, decorrelate, mix,
                                   squash)
                transforms = _random_transforms(batch, height, width, tf.stack([seed, step]),
                                                jitter, scale, rotate)
                transformed = (_transform_compilable if jit_compile else _transform)(
                    images, transforms)
                transformed = tf.where(step < transformed_steps, transformed, images)
                features = extractor(transformed, training=False)
                per_filter_mean = tf.gather(tf.reduce_mean(features, axis=[1, 2]), ids,
                                            axis=-1, batch_dims=1)
                objective = tf.reduce_sum(per_filter_mean)
                if per_filter > 1:
                    objective -= diversity * tf.reduce_sum(_gram_similarity(
                        features, batch // per_filter, per_filter))
            gradient = -tape.gradient(objective, spectrum)  # Adam minimizes
            # Adam restarts when the transformations stop: the objective changes there,
            # and the second moments of the noisier transformed gradients would shrink
            # every refinement step (beta2 remembers ~1000 steps).
            restart = step == transformed_steps
            first = tf.where(restart, tf.zeros_like(first), first)
            second = tf.where(restart, tf.zeros_like(second), second)
            first = beta1 * first + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * tf.square(gradient)
            count = tf.cast(tf.where(step < transformed_steps, step + 1,
                                     step + 1 - transformed_steps), tf.float32)
            corrected = learning_rate * tf.sqrt(1 - beta2 ** count) / (1 - beta1 ** count)
            spectrum -= corrected * first / (tf.sqrt(second) + _ADAM_EPSILON)
            return step + 1, spectrum, first, second

        # An explicit while loop with autograph off: converting this module's functions
        # took most of the trace time (about 3 of 5 s on a tiny model).
        _, spectrum, _, _ = tf.while_loop(
            lambda step, *_: step < steps, ascend,
            [tf.constant(0, tf.int32), spectrum, tf.zeros_like(spectrum),
             tf.zeros_like(spectrum)])
        return _to_image(spectrum, scale_tensor, height, width, decorrelate, mix, squash)

    return tf.function(run, jit_compile=jit_compile, reduce_retracing=True, autograph=False)


_GRAPHS: dict = {}


def fourier_filters(model, layer, filters, steps, jitter, blur_every, decay, octaves,
                    image_size, seed, jit_compile, learning_rate, scale, rotate, decorrelate,
                    diversity, images_per_filter, squash="clip") -> np.ndarray:
    """`filters(..., parameterization="fourier")`: see its docstring for the arguments."""
    from visionkit.interpret.checks import (
        ArgumentError,
        check_finite_result,
        check_float,
        check_int,
        refuse_foreign_options,
    )
    from visionkit.interpret.filters import _filter_setup, _image_size, _objective_layer

    refuse_foreign_options({"octaves": (octaves, 1), "blur_every": (blur_every, 0),
                            "decay": (decay, 0)}, "fourier", "pixel")
    adapter, ids, steps = _filter_setup(model, layer, filters, steps)
    jitter = check_float(jitter, "jitter", minimum=0.0)
    learning_rate = check_float(learning_rate, "learning_rate", minimum=0.0, above=True)
    scale = check_float(scale, "scale", minimum=0.0)
    if scale >= 1.0:
        raise ArgumentError("scale", f"Expected scale in [0, 1) (images scaled by a factor in "
                            f"[1 - scale, 1 + scale]); received scale={scale}.")
    rotate = check_float(rotate, "rotate", minimum=0.0)
    diversity = check_float(diversity, "diversity", minimum=0.0)
    per_filter = check_int(images_per_filter, "images_per_filter", minimum=1)
    if diversity > 0 and per_filter < 2:
        raise ArgumentError("diversity", f"The diversity objective compares the images of "
                            f"one filter: give images_per_filter >= 2; received "
                            f"diversity={diversity}, images_per_filter={per_filter}.")
    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(squash, str) or squash not in SQUASHES:
        raise ArgumentError("squash", f"Expected squash one of {list(SQUASHES)}; received "
                            f"squash={squash!r}.")
    channels = int(adapter.input_shape[-1])
    mix = _normalized_mix(COLOR_CORRELATION_SVD_SQRT)
    if decorrelate is None:
        decorrelate = channels == 3
    elif not isinstance(decorrelate, bool):
        matrix = np.asarray(decorrelate) if isinstance(decorrelate, (np.ndarray, tf.Tensor,
                                                                     list, tuple)) else None
        if (matrix is None or matrix.shape != (3, 3) or matrix.dtype.kind not in "fiu"
                or not np.isfinite(matrix).all() or not np.abs(matrix).max() > 0):
            raise ArgumentError("decorrelate", f"Expected decorrelate True, False, None or "
                                f"a finite non-zero [3, 3] colour matrix (e.g. "
                                f"colour_decorrelation(images)); received "
                                f"decorrelate={decorrelate!r}.")
        mix = _normalized_mix(matrix.astype(np.float64))
        decorrelate = True
    if decorrelate and channels != 3:
        raise ArgumentError("decorrelate", f"The colour decorrelation mixes RGB channels; "
                            f"the model takes {channels} channel(s). Received "
                            f"decorrelate=True.")
    fixed_size = adapter.input_shape[:2]
    fixed = all(s is not None for s in fixed_size)
    height, width = _image_size(image_size, fixed_size if fixed else None)
    objective = _objective_layer(adapter, layer)
    if not fixed:
        adapter.check_input_size([objective], (height, width), "image_size")
    key = (id(adapter.graph), layer, height, width, channels, decorrelate, per_filter,
           bool(jit_compile), squash)
    if key not in _GRAPHS or _GRAPHS[key][1] is not adapter.graph:
        extractor = adapter.feature_model([objective], include_output=False,
                                          input_shape=None if fixed else (None, None, channels))
        _GRAPHS.clear()  # one cached graph: the model being explained now
        _GRAPHS[key] = (fourier_ascent_graph(extractor, *key[2:]), adapter.graph)
    run = _GRAPHS[key][0]
    batch_ids = np.repeat(ids, per_filter).astype(np.int32)
    settings = [tf.constant(value, tf.float32) for value in
                (learning_rate, jitter, scale, rotate, diversity)]
    images = run(tf.constant(batch_ids), tf.constant(seed, tf.int32),
                 tf.constant(steps, tf.int32), *settings, mix=tf.constant(mix)).numpy()
    check_finite_result(images, "filters")
    pictures = np.clip(np.round(images), 0, 255).astype(np.uint8)
    if per_filter > 1:
        pictures = pictures.reshape(len(ids), per_filter, *pictures.shape[1:])
    return pictures
