"""`NonLocalBlock`: self-attention over all positions of a feature map.

Reference:
    - [Non-local Neural Networks](https://arxiv.org/abs/1711.07971)
      (Wang, Girshick, Gupta & He, CVPR 2018)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["NonLocalBlock"]


@keras.saving.register_keras_serializable(package="visionkit")
class NonLocalBlock(keras.layers.Layer):
    """The embedded-Gaussian non-local block (Wang et al. 2018, Eq. 1-3 and Fig. 2).

    With 1x1 convolutions theta, phi and g to `inter_channels`, every position i gets
    `y_i = sum_j softmax_j(theta(x_i) . phi(x_j)) g(x_j)`, the self-attention form; a
    1x1 convolution W back to `C` channels is added to the input: `z = W y + x`. W's
    kernel starts at zero (the paper initialises the batch norm after W to zero for the
    same purpose), so a new block is the identity and can be inserted into a trained
    network.

    Args:
        inter_channels: channels of theta, phi and g. Defaults to None (`C // 2`, the
            paper's bottleneck, at least 1).

    Input shape:
        `[B, H, W, C]`.

    Output shape:
        `[B, H, W, C]`.

    Returns:
        `x + W softmax(theta phi^T) g`, computed over the `H * W` positions.

    Raises:
        ValueError: for `inter_channels` below 1.

    Example:

    >>> import numpy as np
    >>> block = NonLocalBlock()
    >>> x = np.random.default_rng(0).normal(size=(1, 4, 5, 6)).astype("float32")
    >>> bool(np.allclose(block(x), x))  # identity at initialisation
    True
    """

    def __init__(self, inter_channels: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if inter_channels is not None and int(inter_channels) < 1:
            raise ValueError(f"Expected inter_channels >= 1 or None; received "
                             f"inter_channels={inter_channels!r}.")
        self.inter_channels = None if inter_channels is None else int(inter_channels)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        inner = self.inter_channels or max(1, channels // 2)
        self.theta = keras.layers.Conv2D(inner, 1, name="theta")
        self.phi = keras.layers.Conv2D(inner, 1, name="phi")
        self.g = keras.layers.Conv2D(inner, 1, name="g")
        self.output_projection = keras.layers.Conv2D(channels, 1, kernel_initializer="zeros",
                                                     name="output_projection")
        for layer in (self.theta, self.phi, self.g):
            layer.build((None, None, None, channels))
        self.output_projection.build((None, None, None, inner))

    def call(self, inputs):
        shape = tf.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]

        def flat(tensor):
            return tf.reshape(tensor, [batch, height * width, tensor.shape[-1]])

        theta, phi, g = flat(self.theta(inputs)), flat(self.phi(inputs)), flat(self.g(inputs))
        attention = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True), axis=-1)
        attended = tf.reshape(tf.matmul(attention, g), [batch, height, width, g.shape[-1]])
        return inputs + self.output_projection(attended)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds: theta, phi, g, the two attention products and W."""
        height, width, channels = input_shapes[0]
        positions = height * width
        inner = self.inter_channels or max(1, channels // 2)
        return 2 * (4 * positions * channels * inner + 2 * positions * positions * inner)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "inter_channels": self.inter_channels}
