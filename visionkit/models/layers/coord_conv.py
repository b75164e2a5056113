"""`CoordConv2D`: a convolution that also sees each pixel's coordinates.

Reference:
    - [An Intriguing Failing of Convolutional Neural Networks and the CoordConv Solution](
      https://arxiv.org/abs/1807.03247) (Liu et al., NeurIPS 2018)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["CoordConv2D", "coordinate_channels"]


def coordinate_channels(images: tf.Tensor, with_r: bool = False) -> tf.Tensor:
    """The coordinate channels CoordConv appends: row `y` and column `x`, each in -1..1.

    Row `i` of `H` rows has `y = 2 i / (H - 1) - 1` (0 for a single row), column `j`
    likewise; with `with_r` a third channel `r = sqrt(x^2 + y^2)` follows.

    Args:
        images: `[B, H, W, C]` feature maps (only the shape and dtype are used).
        with_r: append the radius channel. Defaults to False.

    Returns:
        `[B, H, W, 2]` (or 3 with `with_r`) of `images`' dtype.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]

    def axis(size):
        positions = tf.cast(tf.range(size), tf.float32)
        return positions * 2.0 / tf.cast(tf.maximum(size - 1, 1), tf.float32) - 1.0

    rows, columns = tf.meshgrid(axis(height), axis(width), indexing="ij")
    channels = [rows, columns]
    if with_r:
        channels.append(tf.sqrt(rows ** 2 + columns ** 2))
    coordinates = tf.stack(channels, axis=-1)[tf.newaxis]
    coordinates = tf.tile(coordinates, [batch, 1, 1, 1])
    return tf.cast(coordinates, images.dtype)


@keras.saving.register_keras_serializable(package="visionkit")
class CoordConv2D(keras.layers.Conv2D):
    """A 2D convolution over the input with its coordinate channels appended.

    Before convolving, the layer concatenates two channels to its input: the row `y` and
    the column `x` of every pixel, each scaled to -1..1 (and with `with_r` the radius
    `sqrt(x^2 + y^2)`), so a filter can learn functions of position that a translation
    equivariant convolution cannot (Liu et al.'s supervised-coordinate tasks). Every
    `keras.layers.Conv2D` argument is accepted; the kernel has `C + 2` (or `C + 3`) input
    channels.

    Args:
        filters: number of output channels.
        kernel_size: int or pair, the kernel's height and width.
        with_r: also append the radius channel. Defaults to False.
        **kwargs: `keras.layers.Conv2D` arguments (`strides`, `padding`, `activation`,
            `use_bias`, initializers, ...).

    Input shape:
        `[B, H, W, C]` float feature maps.

    Output shape:
        `[B, H', W', filters]`, as `Conv2D` with the same arguments.

    Returns:
        The convolution of `concat([inputs, y, x(, r)])`.

    Example:

    >>> import numpy as np
    >>> layer = CoordConv2D(4, 3, padding="same")
    >>> layer(np.zeros((2, 8, 10, 1), "float32")).shape
    TensorShape([2, 8, 10, 4])
    >>> tuple(layer.kernel.shape)
    (3, 3, 3, 4)
    """

    def __init__(self, filters: int, kernel_size: Any, with_r: bool = False,
                 **kwargs: Any) -> None:
        if kwargs.get("data_format", "channels_last") != "channels_last":
            raise ValueError("CoordConv2D supports data_format='channels_last' only; "
                             f"received data_format={kwargs['data_format']!r}.")
        super().__init__(filters, kernel_size, **kwargs)
        self.with_r = bool(with_r)

    @property
    def coordinate_count(self) -> int:
        return 3 if self.with_r else 2

    def build(self, input_shape):
        shape = tuple(input_shape)
        super().build((*shape[:-1], shape[-1] + self.coordinate_count))
        self.input_spec = keras.layers.InputSpec(min_ndim=4, axes={-1: shape[-1]})

    def call(self, inputs):
        return super().call(
            tf.concat([inputs, coordinate_channels(inputs, self.with_r)], axis=-1))

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        return super().compute_output_shape((*shape[:-1], shape[-1] + self.coordinate_count))

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds per image, the coordinate channels included."""
        height, width, channels = input_shapes[0]
        out_height, out_width, _ = self.compute_output_shape((None, height, width, channels))[1:]
        kernel = self.kernel_size[0] * self.kernel_size[1]
        return (2 * out_height * out_width * self.filters * kernel
                * (channels + self.coordinate_count) // self.groups)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "with_r": self.with_r}
