"""`MaxUnpooling2D`: puts values back where a 2x2 max pool took them from, XLA-compilable.

Reference:
    - [SegNet: A Deep Convolutional Encoder-Decoder Architecture for Image Segmentation](
      https://arxiv.org/abs/1511.00561) (Badrinarayanan, Kendall & Cipolla, 2015)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["MaxUnpooling2D", "max_pool_switches"]

# The window of the max pool SegNet's encoder uses: 2x2, stride 2.
POOL_SIZE = 2


def _pad_to_even(features: tf.Tensor) -> tf.Tensor:
    """Pads height and width at the bottom/right to even sizes with the lowest value."""
    shape = tf.shape(features)
    pad_height = shape[1] % POOL_SIZE
    pad_width = shape[2] % POOL_SIZE
    lowest = features.dtype.min
    return tf.pad(features, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]],
                  constant_values=lowest)


def max_pool_switches(features: tf.Tensor) -> tf.Tensor:
    """The switch mask of a 2x2 / stride-2 max pool (padding "same").

    For every window and channel, exactly one position is 1: the first maximum in
    row-major order within the window (the position `tf.nn.max_pool_with_argmax` reports
    when there are no ties). Built from reshapes, comparisons and a cumulative sum, so it
    compiles with XLA.

    Args:
        features: `[B, H, W, C]` the tensor before pooling.

    Returns:
        A tensor of `features`' dtype, `[B, ceil(H/2), ceil(W/2), C, 4]`: one-hot switch
        over the window positions (0,0), (0,1), (1,0), (1,1).
    """
    padded = _pad_to_even(features)
    shape = tf.shape(padded)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    windows = tf.reshape(padded, [batch, height // 2, POOL_SIZE, width // 2, POOL_SIZE,
                                  channels])
    # -> [B, H/2, W/2, C, 2, 2] -> window positions flattened in row-major order.
    windows = tf.transpose(windows, [0, 1, 3, 5, 2, 4])
    windows = tf.reshape(windows, [batch, height // 2, width // 2, channels,
                                   POOL_SIZE * POOL_SIZE])
    is_max = tf.cast(tf.equal(windows, tf.reduce_max(windows, axis=-1, keepdims=True)),
                     tf.int32)
    first = tf.logical_and(tf.equal(is_max, 1), tf.equal(tf.cumsum(is_max, axis=-1), 1))
    return tf.cast(first, features.dtype)


@keras.saving.register_keras_serializable(package="visionkit")
class MaxUnpooling2D(keras.layers.Layer):
    """Max unpooling: each value goes back to where its 2x2 max pool found the maximum.

    Called on `[values, features]`: `values` are the decoder's `[B, h, w, C]` maps at the
    pooled resolution, `features` the encoder's tensor *before* its 2x2 / stride-2 max
    pool (`MaxPooling2D(2, padding="same")`). The layer recomputes the pool's switches from
    `features` (the first maximum of each window in row-major order) and writes each
    value at its window's switch, zeros elsewhere, so the output has `features`' size.

    Unlike `tf.nn.max_pool_with_argmax` + scatter, every op here compiles with XLA, so a
    SegNet trains with `jit_compile=True` and runs on a GPU unchanged. The price is that
    the decoder keeps the pre-pool tensor rather than int64 indices (the same memory a
    U-Net skip connection keeps).

    Input shape:
        `[values [B, ceil(H/2), ceil(W/2), C], features [B, H, W, C]]`.

    Output shape:
        `[B, H, W, C]`.

    Example:

    >>> import numpy as np
    >>> features = np.array([[1, 5], [3, 2]], np.float32).reshape(1, 2, 2, 1)
    >>> values = np.array([[[[7.0]]]], np.float32)
    >>> MaxUnpooling2D()([values, features])[0, ..., 0].numpy().tolist()
    [[0.0, 7.0], [0.0, 0.0]]
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        values, features = inputs
        switches = max_pool_switches(tf.cast(features, values.dtype))
        placed = switches * values[..., tf.newaxis]  # [B, h, w, C, 4]
        shape = tf.shape(placed)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        placed = tf.reshape(placed, [batch, height, width, channels, POOL_SIZE, POOL_SIZE])
        placed = tf.transpose(placed, [0, 1, 4, 2, 5, 3])
        placed = tf.reshape(placed, [batch, height * POOL_SIZE, width * POOL_SIZE, channels])
        feature_shape = tf.shape(features)
        return placed[:, :feature_shape[1], :feature_shape[2], :]

    def compute_output_shape(self, input_shape):
        values_shape, features_shape = input_shape
        return (*features_shape[:3], values_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
