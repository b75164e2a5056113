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

from visionkit.interpret.layers import check_images, conv_layer_names, feature_model
from visionkit.interpret.progress import progress_bar

__all__ = ["deep_dream"]


def deep_dream(model: keras.Model, image: Any, layers: Sequence[str] | str | None = None,
               octaves: int = 3, octave_scale: float = 1.4, steps: int = 20,
               step_size: float = 2.0, tile_size: int = 256, seed: int = 0,
               jit_compile: bool = False, verbose: int = 1) -> np.ndarray:
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

    Returns:
        uint8 NumPy `[H, W, C]`.

    Raises:
        ValueError: for an unknown layer (listing the conv layers) or a bad image.
    """
    array = check_images(image, model, argument="image")
    if array.shape[0] != 1:
        raise ValueError(f"Expected one image [height, width, channels]; received shape "
                         f"{tuple(array.shape)}.")
    names = [layers] if isinstance(layers, str) else list(layers or conv_layer_names(model)[-1:])
    key = (id(model), tuple(names), int(array.shape[-1]), int(steps), float(step_size),
           int(tile_size), bool(jit_compile))
    if key not in _GRAPHS:
        extractor = feature_model(model, names, include_output=False,
                                  input_shape=(None, None, array.shape[-1]))
        _GRAPHS.clear()  # one cached graph: the model being explained now
        _GRAPHS[key] = _dream_graph(extractor, *key[3:])
    run = _GRAPHS[key]
    height, width = int(array.shape[1]), int(array.shape[2])
    image_tensor = array
    bar = progress_bar(int(octaves), "octave", verbose)
    for octave in reversed(range(int(octaves))):
        size = (max(8, round(height / octave_scale ** octave)),
                max(8, round(width / octave_scale ** octave)))
        image_tensor = tf.image.resize(image_tensor, size)
        image_tensor = run(image_tensor, tf.constant(seed * 1000 + octave))
        bar.update()
    image_tensor = tf.image.resize(image_tensor, (height, width))
    return np.clip(np.round(image_tensor[0].numpy()), 0, 255).astype(np.uint8)


_GRAPHS: dict = {}


def _dream_graph(extractor, steps: int, step_size: float, tile_size: int, jit_compile: bool):

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
            shift = tf.random.stateless_uniform([2], tf.stack([seed, step]), -tile_size // 2,
                                                tile_size // 2, dtype=tf.int32)
            rolled = tf.roll(image, shift, axis=[1, 2])
            padded = tf.pad(rolled, [[0, 0], [0, rows * tile_h - height],
                                     [0, cols * tile_w - width], [0, 0]], mode="SYMMETRIC")
            gradient = tf.concat([
                tf.concat([tile_gradient(padded[:, r * tile_h:(r + 1) * tile_h,
                                                c * tile_w:(c + 1) * tile_w])
                           for c in range(cols)], axis=2)
                for r in range(rows)], axis=1)
            gradient = tf.roll(gradient[:, :height, :width], -shift, axis=[1, 2])
            gradient /= tf.math.reduce_std(gradient) + 1e-8
            image = tf.clip_by_value(image + step_size * gradient, 0.0, 255.0)
        return image

    return tf.function(run, jit_compile=jit_compile)
