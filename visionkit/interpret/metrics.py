"""Faithfulness and sanity metrics of attribution maps, batched graph code.

- `deletion` / `insertion` (Petsiuk et al. 2018): pixels are removed (or revealed) in
  the order of the map, most relevant first, at `steps` evenly spaced fractions; the
  target's score on each perturbed copy traces a curve whose area (trapezoid rule over
  the fraction 0..1) is the score: a faithful map has a low deletion AUC and a high
  insertion AUC. What a removed pixel becomes is the `fill`, always stated in the
  result: "blur" (default: a Gaussian blur of the image, as the paper's insertion
  start), "constant" (`value`, 0 = black: it keeps the removed region's outline, which a
  model may still recognise) or "road" (noisy linear imputation, Rong et al. 2022).
- `road` (Rong et al. 2022): removal by noisy linear imputation at several percentages,
  most relevant first ("morf": lower is better) or least relevant first ("lerf":
  higher is better).
- `randomization_test` (Adebayo et al. 2018): cascading randomization of the model's
  layers from the output down; the Spearman rank correlation of each map with the
  trained model's falls for a method that depends on the weights.
- `sparseness` (Chalasani et al. 2020): the Gini index of the map's absolute values.
- `pointing_game` (Zhang et al. 2016), from `visionkit.interpret.pointing`.
- `edge_map` and `random_map`: the model-free baselines (a Sobel edge detector, as in
  Adebayo et al., and uniform noise) a method should beat.

Every perturbed copy of every image goes through the model in batches of `batch_size`
inside one compiled loop; the target's choice (class, region, anchors) is fixed on the
original images, so perturbed copies are scored for the same choice. Scores are the
target's on the model's output (a classifier's probability), as the papers use.

References:
    - [RISE](https://arxiv.org/abs/1806.07421) (Petsiuk et al., BMVC 2018)
    - [ROAD](https://arxiv.org/abs/2202.00449) (Rong et al., ICML 2022)
    - [Sanity Checks for Saliency Maps](https://arxiv.org/abs/1810.03292) (Adebayo et
      al., NeurIPS 2018)
    - [Concise Explanations of Neural Networks using Adversarial Training](
      https://arxiv.org/abs/1810.06583) (Chalasani et al., ICML 2020)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (16, 20, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 16, 20, 3)).astype("float32")
>>> curve = deletion(model, images, random_map(images), target=0, steps=4)
>>> curve.scores.shape, curve.auc.shape, curve.fill
((2, 5), (2,), 'blur (Gaussian, sigma 5 px)')
>>> sparseness(np.eye(4)[None]).round(3).tolist()
[0.75]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_float, check_int
from visionkit.interpret.imputation import impute
from visionkit.interpret.pointing import pointing_game
from visionkit.interpret.randomization import Randomization, randomization_test, spearman
from visionkit.interpret.targets import target_key

__all__ = ["Curve", "FILLS", "Randomization", "deletion", "edge_map", "insertion",
           "pointing_game", "random_map", "randomization_test", "road", "sparseness",
           "spearman"]

FILLS = ("blur", "constant", "road")
# ROAD's removal percentages (Rong et al. 2022, figure 5: 10% to 90%).
ROAD_PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Curve:
    """A perturbation curve per image.

    Attributes:
        fractions: float NumPy `[L]`, the share of pixels removed (or revealed) at each
            level, 0..1.
        scores: float NumPy `[B, L]`, the target's score at each level.
        auc: float NumPy `[B]`: the trapezoid area under `scores` over `fractions` 0..1
            (deletion, insertion), or their mean over the levels (ROAD).
        fill: what a removed pixel became, in words (e.g. "constant 0").
        order: "deletion", "insertion", "morf" or "lerf".
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    fill: str
    order: str

    @property
    def mean(self) -> float:
        """The mean `auc` over the images."""
        return float(np.mean(self.auc))


def _check_maps(maps: Any, images: tf.Tensor) -> tf.Tensor:
    try:
        array = np.asarray(maps, dtype=np.float32)
    except (TypeError, ValueError):
        array = None
    expected = tuple(images.shape[:3])
    if array is None or array.shape != expected:
        raise ArgumentError("maps", f"Expected maps of shape {expected} (one [height, width] "
                            f"map per image, at the images' size); received "
                            f"{getattr(array, 'shape', type(maps).__name__)}. Sum a "
                            "[B, H, W, C] attribution over channels first.")
    if not np.all(np.isfinite(array)):
        raise ArgumentError("maps", f"Expected finite maps; received "
                            f"{int(np.size(array) - np.isfinite(array).sum())} NaN or "
                            "infinite values.")
    return tf.constant(array)


def _blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable Gaussian blur, `sigma` in pixels, kernel radius 2 sigma, the border
    reflected (so the blurred image keeps its brightness at the edges)."""
    radius = max(1, int(round(2 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    channels = int(images.shape[-1])
    result = images
    for axis_kernel in (weights[:, None], weights[None, :]):
        kernel = np.tile(axis_kernel[:, :, None, None], (1, 1, channels, 1))
        pad_rows = radius if axis_kernel.shape[0] > 1 else 0
        pad_cols = radius if axis_kernel.shape[1] > 1 else 0
        size = (int(result.shape[1]), int(result.shape[2]))
        # SYMMETRIC padding needs pads no larger than the side: repeat until it fits.
        while pad_rows or pad_cols:
            step_rows, step_cols = min(pad_rows, size[0]), min(pad_cols, size[1])
            result = tf.pad(result, [[0, 0], [step_rows] * 2, [step_cols] * 2, [0, 0]],
                            "SYMMETRIC")
            size = (size[0] + 2 * step_rows, size[1] + 2 * step_cols)
            pad_rows, pad_cols = pad_rows - step_rows, pad_cols - step_cols
        result = tf.nn.depthwise_conv2d(result, tf.constant(kernel), [1, 1, 1, 1], "VALID")
    return result


def _fill_description(fill: str, value: float, sigma: float, noise: float) -> str:
    if fill == "constant":
        return f"constant {value:g}"
    if fill == "blur":
        return f"blur (Gaussian, sigma {sigma:g} px)"
    return f"road (noisy linear imputation, noise {noise:g} x 255)"


def _check_fill(fill: Any, value: Any, sigma: Any, noise: Any):
    if fill not in FILLS:
        raise ArgumentError("fill", f"Expected fill one of {list(FILLS)}; received "
                            f"fill={fill!r}.")
    value = check_float(value, "value")
    sigma = check_float(sigma, "sigma", minimum=0.0, above=True)
    noise = check_float(noise, "noise", minimum=0.0)
    return value, sigma, noise


_CACHE: dict = {}


def _curve_graph(model, target, batch_size: int, fill: str, jit_compile: bool):
    """Compiled (prepare, run): run scores `B * L` perturbed copies in chunks."""
    key = (id(model), target_key(target), batch_size, fill, jit_compile)
    if key in _CACHE and _CACHE[key][2] is model:
        return _CACHE[key][:2]

    def prepare(images):
        return target.prepare(model(images, training=False))

    def run(images, fills, order, counts, reveal, state, noise, seed):
        # order: [B, P] pixel indices, most relevant first; counts: [L] pixels per level.
        batch, levels = tf.shape(images)[0], tf.shape(counts)[0]
        ranks = tf.reshape(tf.argsort(order, axis=-1, stable=True), tf.shape(images)[:3])
        total = batch * levels
        chunks = (total + batch_size - 1) // batch_size
        scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
        for chunk in tf.range(chunks):
            index = tf.minimum(chunk * batch_size + tf.range(batch_size), total - 1)
            image_index, level = index // levels, index % levels
            selected = tf.cast(tf.gather(ranks, image_index) <
                               tf.gather(counts, level)[:, None, None], tf.float32)
            hidden = tf.where(reveal, 1.0 - selected, selected)
            originals = tf.gather(images, image_index)
            if fill == "road":
                copies = impute(originals, hidden, noise, tf.stack([seed, chunk]))
            else:
                copies = (originals * (1.0 - hidden[..., None]) +
                          tf.gather(fills, image_index) * hidden[..., None])
            chunk_state = tuple(tf.gather(t, image_index) for t in state)
            scores = scores.write(chunk, target.score(model(copies, training=False),
                                                      chunk_state))
        return tf.reshape(scores.concat()[:total], [batch, levels])

    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[key] = (tf.function(prepare, jit_compile=jit_compile, reduce_retracing=True),
                   tf.function(run, jit_compile=jit_compile and fill != "road",
                               reduce_retracing=True), model)
    return _CACHE[key][:2]


def _perturbation_curve(model, images, maps, target, fractions, reveal, least_first, fill,
                        value, sigma, noise, seed, batch_size, task, jit_compile, output,
                        order_name):
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    maps = _check_maps(maps, images)
    value, sigma, noise = _check_fill(fill, value, sigma, noise)
    seed = check_int(seed, "seed", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    target_object = adapter.target(target, task, int(images.shape[0]))
    flat = tf.reshape(maps, [maps.shape[0], -1])
    # Most relevant first (ties in row-major order); least relevant first for LeRF.
    order = tf.argsort(flat if least_first else -flat, axis=-1, stable=True)
    pixels = int(flat.shape[1])
    counts = tf.constant(np.round(np.asarray(fractions) * pixels).astype(np.int32))
    if fill == "constant":
        fills = tf.fill(tf.shape(images), value)
    elif fill == "blur":
        fills = _blur(images, sigma)
    else:
        fills = tf.zeros_like(images)
    prepare, run = _curve_graph(adapter.scored, target_object, batch_size, fill, jit_compile)
    state = prepare(images)
    scores = run(images, fills, order, counts, tf.constant(reveal), state,
                 tf.constant(noise * 255.0), tf.constant(seed)).numpy()
    fractions = np.asarray(fractions, np.float64)
    if order_name in ("deletion", "insertion"):
        auc = np.trapezoid(scores, fractions, axis=-1)
    else:
        auc = scores.mean(axis=-1)
    return Curve(fractions, scores, auc, _fill_description(fill, value, sigma, noise),
                 order_name)


def _levels(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, check_int(steps, "steps", minimum=1, maximum=4096) + 1)


def deletion(model: keras.Model, images: Any, maps: Any, target: Any = None,
             steps: int = 20, fill: str = "blur", value: float = 0.0, sigma: float = 5.0,
             noise: float = 0.01, seed: int = 0, batch_size: int = 256, task: Any = None,
             jit_compile: bool = False, output: str | int | None = None) -> Curve:
    """Deletion curve and AUC (Petsiuk et al. 2018): lower means a more faithful map.

    At each of `steps + 1` fractions 0, 1/steps, ..., 1 the most relevant pixels by the
    map (ties in row-major order) are replaced by the fill and the target is scored.

    Args:
        model: a Keras model (classifier, segmenter or detector; see `targets`).
        images: `[B, H, W, C]` raw pixels.
        maps: `[B, H, W]` attribution maps at the images' size (higher = more relevant).
        target: class id(s), a `Target`, or None (predicted on the originals).
        steps: number of intervals of the fraction 0..1, in [1, 4096]. Defaults to 20.
        fill: "blur", "constant" or "road" (noisy linear imputation). Defaults to "blur".
        value: the constant fill in pixel levels (0..255). Defaults to 0 (black).
        sigma: the blur's standard deviation in pixels, > 0. Defaults to 5 (the paper's
            kernel at 224x224).
        noise: ROAD's noise as a fraction of 255. Defaults to 0.01.
        seed: ROAD's noise seed. Defaults to 0.
        batch_size: perturbed copies per forward pass. Defaults to 256.
        task: task for the target.
        jit_compile: compile with XLA (not for "road", whose solver loops). Defaults to
            False.
        output: the output explained, by name or index, for a model with several.

    Returns:
        A `Curve`: `fractions` `[steps + 1]`, `scores` `[B, steps + 1]`, `auc` `[B]`,
        `fill` in words.

    Raises:
        ArgumentError (a ValueError): naming `maps` (shape other than the images'
            `[B, H, W]`, or not finite), `fill`, `value`, `sigma`, `noise`, `steps`,
            `seed`, `batch_size`, `images`, `target` or `output`.
    """
    return _perturbation_curve(model, images, maps, target, _levels(steps), False, False,
                               fill, value, sigma, noise, seed, batch_size, task,
                               jit_compile, output, "deletion")


def insertion(model: keras.Model, images: Any, maps: Any, target: Any = None,
              steps: int = 20, fill: str = "blur", value: float = 0.0, sigma: float = 5.0,
              noise: float = 0.01, seed: int = 0, batch_size: int = 256, task: Any = None,
              jit_compile: bool = False, output: str | int | None = None) -> Curve:
    """Insertion curve and AUC (Petsiuk et al. 2018): higher means a more faithful map.

    Starts from the fill everywhere (fraction 0) and reveals the most relevant pixels
    first. Arguments, returns and errors as `deletion`.
    """
    return _perturbation_curve(model, images, maps, target, _levels(steps), True, False,
                               fill, value, sigma, noise, seed, batch_size, task,
                               jit_compile, output, "insertion")


def road(model: keras.Model, images: Any, maps: Any, target: Any = None,
         order: str = "morf", percentages: Any = ROAD_PERCENTAGES, noise: float = 0.01,
         seed: int = 0, batch_size: int = 256, task: Any = None,
         output: str | int | None = None) -> Curve:
    """ROAD: RemOve And Debias (Rong et al. 2022), with noisy linear imputation.

    At each percentage the most relevant ("morf") or least relevant ("lerf") pixels are
    removed and imputed from their neighbours (`imputation.noisy_linear_imputation`), so
    the removed region leaves no outline; `auc` is the mean score over the percentages.
    With "morf" a faithful map scores low, with "lerf" high.

    Args:
        model: a Keras model.
        images: `[B, H, W, C]` raw pixels.
        maps: `[B, H, W]` attribution maps.
        target: class id(s), a `Target`, or None (predicted on the originals).
        order: "morf" (most relevant first) or "lerf" (least relevant first). Defaults to
            "morf".
        percentages: fractions removed, each in [0, 1]. Defaults to 0.1 .. 0.9 (the
            paper's).
        noise: standard deviation of the imputation noise as a fraction of 255. Defaults
            to 0.01.
        seed: noise seed. Defaults to 0.
        batch_size: perturbed copies per forward pass. Defaults to 256.
        task: task for the target.
        output: the output explained, by name or index, for a model with several.

    Returns:
        A `Curve` with `fractions` = the percentages and `scores` `[B, L]`.

    Raises:
        ArgumentError (a ValueError): naming `order`, `percentages`, `maps`, `noise`,
            `seed`, `batch_size`, `images`, `target` or `output`.
    """
    if order not in ("morf", "lerf"):
        raise ArgumentError("order", f"Expected order 'morf' (most relevant first) or "
                            f"'lerf' (least relevant first); received order={order!r}.")
    try:
        levels = np.asarray(percentages, np.float64).reshape(-1)
    except (TypeError, ValueError):
        levels = np.asarray([np.nan])
    if levels.size == 0 or not np.all((levels >= 0) & (levels <= 1)):
        raise ArgumentError("percentages", f"Expected percentages as fractions in [0, 1]; "
                            f"received percentages={percentages!r}.")
    return _perturbation_curve(model, images, maps, target, levels, False, order == "lerf",
                               "road", 0.0, 1.0, noise, seed, batch_size, task, False,
                               output, order)


@tf.function(reduce_retracing=True)
def _gini(maps: tf.Tensor) -> tf.Tensor:
    values = tf.sort(tf.abs(tf.reshape(maps, [tf.shape(maps)[0], -1])), axis=-1)
    count = tf.cast(tf.shape(values)[1], tf.float64)
    values = tf.cast(values, tf.float64)
    index = tf.range(1, count + 1, dtype=tf.float64)
    numerator = tf.reduce_sum((2.0 * index - count - 1.0) * values, axis=-1)
    return tf.math.divide_no_nan(numerator, count * tf.reduce_sum(values, axis=-1))


def sparseness(maps: Any) -> np.ndarray:
    """Sparseness: the Gini index of each map's absolute values (Chalasani et al. 2020).

    `G = sum_i (2i - n - 1) a_(i) / (n sum_i a_i)` over the `n` values sorted ascending:
    0 when every pixel has the same attribution, `1 - 1/n` when one pixel has it all. An
    all-zero map scores 0.

    Args:
        maps: `[B, H, W]` (or `[B, H, W, C]`) attributions.

    Returns:
        float64 NumPy `[B]` in [0, 1).

    Raises:
        ArgumentError (a ValueError): naming `maps` (fewer than 2 dimensions, or not
            finite).
    """
    array = np.asarray(maps, dtype=np.float32)
    if array.ndim < 2 or array.shape[0] == 0 or not np.all(np.isfinite(array)):
        raise ArgumentError("maps", f"Expected finite maps [batch, ...] with at least one "
                            f"map; received shape {array.shape}.")
    return _gini(tf.constant(array)).numpy()


def edge_map(images: Any) -> np.ndarray:
    """The Sobel edge magnitude of each image, summed over channels: a model-free
    "explanation" (Adebayo et al. 2018's edge-detector baseline).

    Args:
        images: `[B, H, W, C]` pixels.

    Returns:
        float32 NumPy `[B, H, W]`.
    """
    images = tf.constant(np.asarray(images, np.float32))
    edges = tf.image.sobel_edges(images)  # [B, H, W, C, 2]
    return tf.reduce_sum(tf.norm(edges, axis=-1), axis=-1).numpy()


def random_map(images: Any, seed: int = 0) -> np.ndarray:
    """Uniform random maps `[B, H, W]` (float32, seeded): the chance baseline."""
    shape = np.shape(images)[:3]
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)
