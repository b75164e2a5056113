"""Feature maps of chosen layers, and the first convolution's kernels as colour tiles.

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> maps = activations(model, np.zeros((2, 24, 32, 3)), layers=["conv1", "conv2"])
>>> maps["conv1"].shape, maps["conv2"].shape
((2, 24, 32, 4), (2, 12, 16, 8))
>>> weights(model).shape
(4, 3, 3, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_int

__all__ = ["activations", "weights"]


def activations(model: keras.Model, images: Any, layers: Sequence[str] | str | None = None,
                average: bool = False, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Outputs of `layers` for `images`.

    Args:
        model: a Keras model (nested backbones allowed).
        images: `[B, H, W, C]` raw pixels.
        layers: layer names, or None for every convolution layer. Defaults to None.
        average: average the feature maps over channels (`[B, h, w]`). Defaults to False.
        batch_size: images per forward pass. Defaults to 64.

    Returns:
        A dict from layer name to a NumPy array `[B, h, w, C]` (or `[B, h, w]`).

    Raises:
        ArgumentError (a ValueError): naming `layers` (unknown names, or none given on a
            model without convolution layers), `images` or `batch_size`.
    """
    adapter = adapt(model, require_output=False)
    names = _layer_names(adapter, layers)
    images = adapter.check_images(images)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    extractor = adapter.feature_model(names, include_output=False)
    forward = tf.function(lambda x: extractor(x, training=False))
    batches = [forward(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    batches = [b if isinstance(b, (list, tuple)) else [b] for b in batches]
    result = {}
    for index, name in enumerate(names):
        array = np.concatenate([np.asarray(b[index]) for b in batches])
        result[name] = array.mean(axis=-1) if average and array.ndim == 4 else array
    return result


def _layer_names(adapter, layers) -> list[str]:
    if layers is None:
        names = adapter.conv_layer_names()
        if not names:
            raise ArgumentError("layers", f"Model {adapter.model.name!r} has no reachable "
                                "convolution layer; name the layers to read with layers=.")
        return names
    names = [layers] if isinstance(layers, str) else list(layers) if isinstance(
        layers, (list, tuple)) else None
    if not names or not all(isinstance(name, str) for name in names):
        raise ArgumentError("layers", f"Expected layers as a layer name or a non-empty list "
                            f"of names; received layers={layers!r}.")
    for name in names:
        adapter.find_layer(name, "layers")
    return names


def weights(model: keras.Model, layer: str | None = None) -> np.ndarray:
    """The kernels of a convolution layer as tiles in 0..1, one per output filter.

    Args:
        model: a Keras model.
        layer: a convolution layer; defaults to the first one.

    Returns:
        float32 `[filters, k, k, 3]`: kernels over 3 input channels as colour, over one
        as grey, each tile scaled to 0..1 independently.

    Raises:
        ValueError: for a layer without a 4D kernel.
    """
    adapter = adapt(model, require_output=False)
    names = adapter.conv_layer_names()
    if layer is None and not names:
        raise ArgumentError("layer", f"Model {model.name!r} has no reachable convolution "
                            "layer.")
    target = adapter.find_layer(layer or names[0])
    kernel = getattr(target, "kernel", None)
    if kernel is None or len(kernel.shape) != 4:
        raise ArgumentError("layer", f"Expected a convolution layer with a 4D kernel; layer "
                         f"{target.name!r} has none. Convolution layers: {names}.")
    kernel = np.asarray(kernel)
    tiles = np.transpose(kernel, (3, 0, 1, 2))
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    elif tiles.shape[-1] != 3:
        tiles = np.repeat(tiles.mean(axis=-1, keepdims=True), 3, axis=-1)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    return ((tiles - low) / np.maximum(high - low, 1e-12)).astype(np.float32)
