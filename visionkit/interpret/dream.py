"""DeepDream: gradient ascent on the activations of chosen layers, over octaves.

Each step rolls the image by a random shift, computes the gradient tile by tile (so a
large image never goes through the model at once), rolls the gradient back and moves the
image along the normalized gradient. The steps of one octave are one `tf.function`.

Reference:
    - [Inceptionism: Going Deeper into Neural Networks](
      https://research.google/blog/inceptionism-going-deeper-into-neural-networks/)
      (Mordvintsev et al., 2015)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> image = np.full((40, 56, 3), 128.0)
>>> deep_dream(model, image, layers=["conv2"], octaves=2, steps=2, tile_size=32,
...            verbose=0).shape
(40, 56, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.activations import _layer_names
from visionkit.interpret.adapter import adapt, check_images
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_float, check_int
from visionkit.interpret.progress import progress_bar

__all__ = ["deep_dream"]


def deep_dream(model: keras.Model, image: Any, layers: Sequence[str] | str | None = None,
               octaves: int = 3, octave_scale: float = 1.4, steps: int = 20,
               step_size: float = 2.0, tile_size: int = 256, seed: int = 0,
               jit_compile: bool = False, verbose: int = 1,
               jitter: int | None = None) -> np.ndarray:
    """DeepDream of one image.

    Args:
        model: a Keras model on raw 0..255 pixels (flat or with a nested backbone).
        image: `[H, W, C]` (or `[1, H, W, C]`) raw pixels, of any size.
        layers: layers whose mean activations are maximized. Defaults to the last
            convolution layer.
        octaves: number of scales, smallest first. Defaults to 3.
        octave_scale: size ratio between octaves. Defaults to 1.4.
        steps: ascent steps per octave. Defaults to 20.
        step_size: pixels moved per step (normalized gradient). Defaults to 2.0.
        tile_size: largest tile side passed through the model at once. Defaults to 256.
        seed: seed of the random shifts. Defaults to 0.
        jit_compile: compile the step loop with XLA. Defaults to False.
        verbose: 1 shows a progress bar over the octaves (each one compiled call) when
            there are several; 0 shows nothing. Defaults to 1.
        jitter: largest random shift (pixels) of the image before each step, the shift
            undone on the gradient. Defaults to None (half the tile size); 0 computes
            every step on the unshifted image.

    Returns:
        uint8 NumPy `[H, W, C]`.

    Raises:
        ArgumentError (a ValueError): naming `layers` (unknown names), `image`,
            `octaves` or `octave_scale` (the smallest octave too small for the layers),
            `tile_size` (tiles too small for the layers), `steps`, `step_size`, `seed` or
            `jitter`.
    """
    adapter = adapt(model, require_output=False)
    if layers is None:
        convs = adapter.conv_layer_names()
        layers = convs[-1:] or None
    names = _layer_names(adapter, layers)
    adapter.require_float_input("deep_dream")
    octaves = check_int(octaves, "octaves", minimum=1)
    octave_scale = check_float(octave_scale, "octave_scale", minimum=1.0)
    steps = check_int(steps, "steps", minimum=1)
    step_size = check_float(step_size, "step_size", minimum=0.0, above=True)
    tile_size = check_int(tile_size, "tile_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    shift = max(1, tile_size // 2) if jitter is None else check_int(jitter, "jitter", minimum=0)
    channels = adapter.input_shape[-1]
    array = _dream_image(adapter, image, channels)
    height, width = int(array.shape[1]), int(array.shape[2])
    sizes = [(max(8, round(height / octave_scale ** octave)),
              max(8, round(width / octave_scale ** octave)))
             for octave in reversed(range(octaves))]
    adapter.check_input_size(names, sizes[0], "octaves" if octaves > 1 else "image")
    tile = (min(sizes[0][0], tile_size), min(sizes[0][1], tile_size))
    adapter.check_input_size(names, tile, "tile_size")
    key = (id(adapter.graph), tuple(names), int(array.shape[-1]), steps, step_size,
           tile_size, shift, bool(jit_compile))
    if key not in _GRAPHS or _GRAPHS[key][1] is not adapter.graph:
        extractor = adapter.feature_model(names, include_output=False,
                                          input_shape=(None, None, array.shape[-1]))
        _GRAPHS.clear()  # one cached graph: the model being explained now
        _GRAPHS[key] = (_dream_graph(extractor, *key[3:]), adapter.graph)
    run = _GRAPHS[key][0]
    image_tensor = array
    bar = progress_bar(octaves, "octave", verbose)
    for octave, size in zip(reversed(range(octaves)), sizes):
        image_tensor = tf.image.resize(image_tensor, size)
        image_tensor = run(image_tensor, tf.constant(seed * 1000 + octave))
        bar.update()
    image_tensor = tf.image.resize(image_tensor, (height, width))
    check_finite_result(image_tensor.numpy(), "deep_dream")
    return np.clip(np.round(image_tensor[0].numpy()), 0, 255).astype(np.uint8)


def _dream_image(adapter, image, channels) -> tf.Tensor:
    """One image `[1, H, W, C]` of any size (the model's own size is not required)."""
    array = check_images(image, (None, None, channels), adapter.model.name, argument="image")
    if array.shape[0] != 1:
        raise ArgumentError("image", f"Expected one image [height, width, channels]; "
                            f"received shape {tuple(array.shape)}.")
    return array


_GRAPHS: dict = {}


def _dream_graph(extractor, steps: int, step_size: float, tile_size: int, shift: int,
                 jit_compile: bool):

    def tile_gradient(tile):
        with tf.GradientTape() as tape:
            tape.watch(tile)
            features = extractor(tile, training=False)
            features = features if isinstance(features, (list, tuple)) else [features]
            loss = tf.add_n([tf.reduce_mean(f) for f in features])
        return tape.gradient(loss, tile)

    def run(image, seed):
        # One trace per image size: tile bounds are static, so XLA can compile the loop.
        height, width = int(image.shape[1]), int(image.shape[2])
        tile_h, tile_w = min(height, tile_size), min(width, tile_size)
        rows, cols = -(-height // tile_h), -(-width // tile_w)
        for step in tf.range(steps):
            moved = tf.random.stateless_uniform([2], tf.stack([seed, step]), -shift,
                                                shift + 1, dtype=tf.int32)
            rolled = tf.roll(image, moved, axis=[1, 2])
            padded = tf.pad(rolled, [[0, 0], [0, rows * tile_h - height],
                                     [0, cols * tile_w - width], [0, 0]], mode="SYMMETRIC")
            gradient = tf.concat([
                tf.concat([tile_gradient(padded[:, r * tile_h:(r + 1) * tile_h,
                                                c * tile_w:(c + 1) * tile_w])
                           for c in range(cols)], axis=2)
                for r in range(rows)], axis=1)
            gradient = tf.roll(gradient[:, :height, :width], -moved, axis=[1, 2])
            gradient /= tf.math.reduce_std(gradient) + 1e-8
            image = tf.clip_by_value(image + step_size * gradient, 0.0, 255.0)
        return image

    return tf.function(run, jit_compile=jit_compile)
