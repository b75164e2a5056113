"""`SqueezeExcitation`: channel attention from globally pooled features.

Reference:
    - [Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
      (Hu, Shen & Sun, CVPR 2018)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.models.common import positive_ints

__all__ = ["SqueezeExcitation"]


@keras.saving.register_keras_serializable(package="visionkit")
class SqueezeExcitation(keras.layers.Layer):
    """Rescales each channel by a gate computed from the whole feature map.

    Squeeze: global average pooling to `[B, C]`. Excitation: a dense layer of
    `max(1, C // ratio)` units with ReLU, a dense layer of `C` units with a sigmoid.
    The input is multiplied channel-wise by that gate (Hu et al. 2018, Fig. 2; their
    reduction ratio r = 16).

    Args:
        ratio: reduction ratio r of the bottleneck. Defaults to 16.

    Input shape:
        `[B, H, W, C]`.

    Output shape:
        `[B, H, W, C]`, the input scaled per channel by a gate in 0..1.

    Returns:
        `inputs * sigmoid(W2 relu(W1 mean_hw(inputs) + b1) + b2)`.

    Raises:
        ValueError: for a ratio below 1.

    Example:

    >>> import numpy as np
    >>> SqueezeExcitation(ratio=4)(np.ones((1, 3, 5, 8), "float32")).shape
    TensorShape([1, 3, 5, 8])
    """

    def __init__(self, ratio: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        (self.ratio,) = positive_ints(ratio=ratio)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.reduce = keras.layers.Dense(max(1, channels // self.ratio), activation="relu",
                                         name="reduce")
        self.expand = keras.layers.Dense(channels, activation="sigmoid", name="expand")
        self.reduce.build((None, channels))
        self.expand.build((None, self.reduce.units))

    def call(self, inputs):
        squeezed = tf.reduce_mean(inputs, axis=[1, 2])
        gate = self.expand(self.reduce(squeezed))
        return inputs * tf.cast(gate, inputs.dtype)[:, tf.newaxis, tf.newaxis, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds of the two dense layers."""
        channels = input_shapes[0][-1]
        return 2 * 2 * channels * max(1, channels // self.ratio)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio}
