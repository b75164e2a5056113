"""The model-parameter randomization test (Adebayo et al. 2018), cascading.

The layers with trainable weights are re-initialized one after another from the output
down (each step keeps the layers randomized before it), the attribution method is run
on the same images after each step, and each map is compared with the trained model's
by Spearman's rank correlation. A method that explains the model loses its correlation
as the layers go; one that only reads the image (an edge detector) keeps it.

Each weight is redrawn from its layer's own initializer (`kernel_initializer`,
`bias_initializer`, `gamma_initializer`, ...) with a seed derived from `seed`; a weight
whose layer names no initializer is randomly permuted instead. The model's weights are
restored afterwards, also when the method raises. The explained class is fixed to the
trained model's choice on the original images, so every step explains the same class.

Reference:
    - [Sanity Checks for Saliency Maps](https://arxiv.org/abs/1810.03292) (Adebayo et
      al., NeurIPS 2018)

Example:

>>> import numpy as np
>>> a = np.array([[[1.0, 2.0], [3.0, 4.0]]]); b = np.array([[[1.0, 3.0], [2.0, 8.0]]])
>>> spearman(a, b).round(3).tolist()
[0.8]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_int

__all__ = ["Randomization", "randomization_test", "spearman"]


@dataclass
class Randomization:
    """The result of a cascading randomization test.

    Attributes:
        layers: names of the layers randomized, in order (output first); step `i` has
            layers `0..i` randomized.
        correlations: float NumPy `[L, B]`: Spearman correlation of each image's map
            after step `i` with its map on the trained model.
        maps: float NumPy `[L + 1, B, H, W]`: the trained model's maps, then each step's.
    """

    layers: list[str]
    correlations: np.ndarray
    maps: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean correlation per step `[L]`."""
        return self.correlations.mean(axis=1)


def _average_ranks(values: tf.Tensor) -> tf.Tensor:
    """1-based ranks along the last axis, ties given their average rank."""
    ordered = tf.sort(values, axis=-1)
    below = tf.searchsorted(ordered, values, side="left")
    through = tf.searchsorted(ordered, values, side="right")
    return tf.cast(below + through + 1, tf.float64) / 2.0


@tf.function(reduce_retracing=True)
def _spearman(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    ranks = [_average_ranks(tf.reshape(m, [tf.shape(m)[0], -1])) for m in (first, second)]
    centred = [r - tf.reduce_mean(r, axis=-1, keepdims=True) for r in ranks]
    covariance = tf.reduce_sum(centred[0] * centred[1], axis=-1)
    spread = tf.sqrt(tf.reduce_sum(tf.square(centred[0]), axis=-1) *
                     tf.reduce_sum(tf.square(centred[1]), axis=-1))
    return tf.math.divide_no_nan(covariance, spread)


def spearman(first: Any, second: Any) -> np.ndarray:
    """Spearman's rank correlation of each pair of maps (ties ranked by their average,
    as `scipy.stats.spearmanr`), in one batched graph call.

    A constant map has no ranks to correlate: its correlation is reported as 0.

    Args:
        first: `[B, ...]` maps.
        second: `[B, ...]` maps of the same shape.

    Returns:
        float64 NumPy `[B]` in [-1, 1].

    Raises:
        ArgumentError (a ValueError): naming `second` when the shapes differ.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim < 2:
        raise ArgumentError("second", f"Expected two batches of maps of the same shape "
                            f"[B, ...]; received {first.shape} and {second.shape}.")
    return _spearman(tf.constant(first), tf.constant(second)).numpy()


def _weighted_layers(adapter) -> list[keras.layers.Layer]:
    return [layer for layer in adapter.layers()
            if layer.trainable_weights and not isinstance(layer, keras.Model)]


def _randomize(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    for variable in layer.trainable_weights:
        name = variable.path.split("/")[-1]
        initializer = getattr(layer, f"{name}_initializer", None)
        if isinstance(initializer, keras.initializers.Initializer):
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = int(rng.integers(2**31 - 1))
            fresh = type(initializer).from_config(config)
            value = keras.ops.convert_to_numpy(fresh(tuple(variable.shape),
                                                     dtype=variable.dtype))
        else:
            value = rng.permutation(keras.ops.convert_to_numpy(variable).reshape(-1))
        variable.assign(np.asarray(value).reshape(tuple(variable.shape)))


def randomization_test(model: keras.Model, images: Any, method: str | Callable = "grad_cam",
                       target: Any = None, layers: Sequence[str] | None = None,
                       seed: int = 0, task: Any = None, output: str | int | None = None,
                       **method_arguments: Any) -> Randomization:
    """Cascading model-parameter randomization test (Adebayo et al. 2018).

    Args:
        model: a Keras model (its weights are changed during the test and restored).
        images: `[B, H, W, C]` raw pixels.
        method: the name of a `vk.interpret` function returning `[B, H, W]` maps
            ("grad_cam", "saliency", "occlusion", ...), or a callable
            `method(model, images, target=..., **method_arguments) -> [B, H, W]`.
            A callable that ignores the model (an edge detector) is the control.
            Defaults to "grad_cam".
        target: class id(s) or None: the trained model's predicted classes, kept fixed
            through the steps.
        layers: the layers randomized, in that order (nested names allowed). Defaults to
            every layer with trainable weights, from the output down.
        seed: seed of the new weights. Defaults to 0.
        task: task for the target.
        output: the output explained, by name or index, for a model with several.
        **method_arguments: passed to the method (e.g. `layer="conv3"`).

    Returns:
        A `Randomization` (`layers`, `correlations` `[L, B]`, `maps`).

    Raises:
        ArgumentError (a ValueError): naming `method` (unknown name or maps of another
            shape than `[B, H, W]`), `layers` (unknown, or without trainable weights),
            `seed`, `images`, `target` or `output`.
    """
    import visionkit.interpret as interpret

    adapter = adapt(model, output)
    images = adapter.check_images(images).numpy()
    seed = check_int(seed, "seed", minimum=0)
    if isinstance(method, str):
        function = getattr(interpret, method, None) if not method.startswith("_") else None
        if not callable(function):
            raise ArgumentError("method", f"Expected method as the name of a "
                                f"vk.interpret attribution function or a callable; received "
                                f"method={method!r}.")
    elif callable(method):
        function = method
    else:
        raise ArgumentError("method", f"Expected method as a name or a callable; received "
                            f"{type(method).__name__}.")
    if layers is None:
        chosen = list(reversed(_weighted_layers(adapter)))
    else:
        chosen = [adapter.find_layer(name, "layers") for name in layers]
        empty = [layer.name for layer in chosen if not layer.trainable_weights]
        if empty:
            raise ArgumentError("layers", f"Expected layers with trainable weights; layers "
                                f"{empty} have none.")
    if target is None:
        target_object = adapter.target(None, task, len(images))
        state = target_object.prepare(adapter.scored(images, training=False))
        target = target_object.classes(state).numpy()
    kwargs = dict(method_arguments, target=target)
    if task is not None:
        kwargs["task"] = task
    if output is not None:
        kwargs["output"] = output

    def explain():
        maps = np.asarray(function(model, images, **kwargs), np.float64)
        if maps.shape != images.shape[:3]:
            raise ArgumentError("method", f"Expected method to return maps of shape "
                                f"{images.shape[:3]}; received {maps.shape}.")
        return maps

    saved = [keras.ops.convert_to_numpy(v) for v in model.weights]
    rng = np.random.default_rng(seed)
    try:
        all_maps = [explain()]
        for layer in chosen:
            _randomize(layer, rng)
            all_maps.append(explain())
    finally:
        for variable, value in zip(model.weights, saved):
            variable.assign(value)
    stacked = np.stack(all_maps)
    correlations = np.stack([spearman(stacked[0], maps) for maps in stacked[1:]])
    return Randomization([layer.name for layer in chosen], correlations, stacked)
