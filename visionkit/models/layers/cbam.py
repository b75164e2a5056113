"""`CBAM`: the Convolutional Block Attention Module (channel, then spatial attention).

Reference:
    - [CBAM: Convolutional Block Attention Module](https://arxiv.org/abs/1807.06521)
      (Woo, Park, Lee & Kweon, ECCV 2018)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.models.common import positive_ints

__all__ = ["CBAM"]


@keras.saving.register_keras_serializable(package="visionkit")
class CBAM(keras.layers.Layer):
    """Channel attention followed by spatial attention (Woo et al. 2018, Fig. 1-2).

    Channel attention: a shared MLP (`C -> max(1, C // ratio)` with ReLU `-> C`) applied
    to the spatially average-pooled and max-pooled features; the gate is the sigmoid of
    the sum of both outputs (Eq. 2). Spatial attention: the channel-wise mean and max of
    the gated features, concatenated, through a `kernel_size` x `kernel_size` "same"
    convolution with one sigmoid output (Eq. 3). The output is the input scaled by both
    gates in turn.

    Args:
        ratio: reduction ratio of the shared MLP. Defaults to 16.
        kernel_size: size of the spatial attention's convolution. Defaults to 7.

    Input shape:
        `[B, H, W, C]`.

    Output shape:
        `[B, H, W, C]`.

    Returns:
        `M_s(F') * F'` with `F' = M_c(F) * F`.

    Raises:
        ValueError: for a ratio or kernel size below 1.

    Example:

    >>> import numpy as np
    >>> CBAM(ratio=2, kernel_size=3)(np.ones((1, 4, 6, 8), "float32")).shape
    TensorShape([1, 4, 6, 8])
    """

    def __init__(self, ratio: int = 16, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ratio, self.kernel_size = positive_ints(ratio=ratio, kernel_size=kernel_size)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.hidden = keras.layers.Dense(max(1, channels // self.ratio), activation="relu",
                                         name="mlp_hidden")
        self.projection = keras.layers.Dense(channels, name="mlp_output")
        self.spatial = keras.layers.Conv2D(1, self.kernel_size, padding="same",
                                           activation="sigmoid", name="spatial_conv")
        self.hidden.build((None, channels))
        self.projection.build((None, self.hidden.units))
        self.spatial.build((None, None, None, 2))

    def call(self, inputs):
        average = tf.reduce_mean(inputs, axis=[1, 2])
        maximum = tf.reduce_max(inputs, axis=[1, 2])
        channel_gate = tf.sigmoid(self.projection(self.hidden(average))
                                  + self.projection(self.hidden(maximum)))
        gated = inputs * tf.cast(channel_gate, inputs.dtype)[:, tf.newaxis, tf.newaxis, :]
        pooled = tf.concat([tf.reduce_mean(gated, axis=-1, keepdims=True),
                            tf.reduce_max(gated, axis=-1, keepdims=True)], axis=-1)
        return gated * tf.cast(self.spatial(pooled), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds: the shared MLP twice and the spatial convolution."""
        height, width, channels = input_shapes[0]
        mlp = 2 * 2 * channels * max(1, channels // self.ratio)
        return 2 * mlp + 2 * height * width * self.kernel_size ** 2 * 2

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio, "kernel_size": self.kernel_size}
