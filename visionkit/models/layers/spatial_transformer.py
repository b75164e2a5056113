"""`SpatialTransformer`: a learnt affine warp of its input (localisation net, grid, sampler).

Reference:
    - [Spatial Transformer Networks](https://arxiv.org/abs/1506.02025)
      (Jaderberg, Simonyan, Zisserman & Kavukcuoglu, NeurIPS 2015)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

__all__ = ["SpatialTransformer", "affine_grid", "bilinear_sample"]

# theta of the identity transform, row-major [[1, 0, 0], [0, 1, 0]] (Jaderberg et al.
# initialise the localisation net's regression layer to it).
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def affine_grid(theta: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The grid generator: source coordinates of every target pixel (Eq. 1 of the paper).

    Target pixel (row i, column j) has normalised coordinates `x_t = 2 j / (width - 1) - 1`
    and `y_t = 2 i / (height - 1) - 1` (corners at -1 and 1); its source is
    `(x_s, y_s) = theta @ (x_t, y_t, 1)`, in the same normalised units of the input.

    Args:
        theta: `[B, 2, 3]` affine transforms.
        height: output height in pixels.
        width: output width in pixels.

    Returns:
        `(x_s, y_s)`, each float32 `[B, height, width]` in normalised units.
    """
    def axis(size):
        return tf.linspace(-1.0, 1.0, size) if size > 1 else tf.zeros([1])

    rows, columns = tf.meshgrid(axis(height), axis(width), indexing="ij")
    target = tf.stack([tf.reshape(columns, [-1]), tf.reshape(rows, [-1]),
                       tf.ones([height * width])], axis=0)  # [3, h*w]
    source = tf.einsum("bij,jn->bin", tf.cast(theta, tf.float32), target)
    batch = tf.shape(theta)[0]
    return (tf.reshape(source[:, 0], [batch, height, width]),
            tf.reshape(source[:, 1], [batch, height, width]))


def bilinear_sample(images: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """The bilinear sampler (Eq. 5 of the paper), zero outside the image.

    Args:
        images: `[B, H, W, C]` the input.
        x: `[B, h, w]` source column of every output pixel, in pixels (0 .. W-1).
        y: `[B, h, w]` source row of every output pixel, in pixels (0 .. H-1).

    Returns:
        `[B, h, w, C]`: `sum_nm U_nm max(0, 1 - |x - m|) max(0, 1 - |y - n|)`, where
        pixels outside the image count as zero.
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    batch_index = tf.broadcast_to(tf.range(shape[0])[:, None, None], tf.shape(x))
    x0 = tf.floor(x)
    y0 = tf.floor(y)
    output = 0.0
    for dy in (0.0, 1.0):
        for dx in (0.0, 1.0):
            xs, ys = x0 + dx, y0 + dy
            weight = (1.0 - tf.abs(x - xs)) * (1.0 - tf.abs(y - ys))
            inside = ((xs >= 0) & (xs <= tf.cast(width - 1, xs.dtype))
                      & (ys >= 0) & (ys <= tf.cast(height - 1, ys.dtype)))
            column = tf.clip_by_value(tf.cast(xs, tf.int32), 0, width - 1)
            row = tf.clip_by_value(tf.cast(ys, tf.int32), 0, height - 1)
            values = tf.gather_nd(images, tf.stack([batch_index, row, column], axis=-1))
            weight = tf.where(inside, weight, tf.zeros_like(weight))
            output = output + tf.cast(weight, images.dtype)[..., None] * values
    return output


@keras.saving.register_keras_serializable(package="visionkit")
class SpatialTransformer(keras.layers.Layer):
    """Warps its input by an affine transform that a small network predicts from it.

    The three parts of Jaderberg et al. 2015 (Fig. 2): a localisation network (for each
    of `localization_filters` a 3x3 "same" ReLU convolution and a 2x2 max pool, then a
    ReLU dense layer of `localization_units` and a dense regression to the 6 numbers of
    `theta`, initialised to the identity), the grid generator (`affine_grid`) and the
    bilinear sampler (`bilinear_sample`, zero outside the input). Gradients flow to the
    localisation network through the sampling weights, so it learns from the task's loss
    alone.

    Args:
        output_size: `(height, width)` of the output, or None for the input's.
            Defaults to None.
        localization_filters: filters of the localisation network's convolutions.
            Defaults to (8, 16).
        localization_units: units of its hidden dense layer. Defaults to 32.

    Input shape:
        `[B, H, W, C]` with static H, W and C.

    Output shape:
        `[B, h, w, C]` (`output_size`, or H and W).

    Returns:
        The warped input. `transform(inputs)` returns the predicted theta `[B, 2, 3]`.

    Raises:
        ValueError: for a bad `output_size`, filters or units.

    Example:

    >>> import numpy as np
    >>> layer = SpatialTransformer(output_size=(8, 8))
    >>> images = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    >>> layer(images).shape
    TensorShape([2, 8, 8, 1])
    >>> layer.transform(images).numpy()[0].tolist()  # the identity before training
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    def __init__(self, output_size: Sequence[int] | None = None,
                 localization_filters: Sequence[int] = (8, 16), localization_units: int = 32,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if output_size is not None and (len(tuple(output_size)) != 2
                                        or min(int(s) for s in output_size) < 1):
            raise ValueError(f"Expected output_size as (height, width) of positive integers "
                             f"or None; received output_size={output_size!r}.")
        filters = tuple(int(f) for f in localization_filters)
        if not filters or min(filters) < 1 or int(localization_units) < 1:
            raise ValueError(
                f"Expected positive localization_filters and localization_units; received "
                f"localization_filters={localization_filters!r}, "
                f"localization_units={localization_units!r}.")
        self.output_size = None if output_size is None else tuple(int(s) for s in output_size)
        self.localization_filters = filters
        self.localization_units = int(localization_units)

    def build(self, input_shape):
        height, width, channels = (int(s) for s in input_shape[1:])
        self.localization_convolutions = [
            keras.layers.Conv2D(f, 3, padding="same", activation="relu",
                                name=f"localization_conv{index + 1}")
            for index, f in enumerate(self.localization_filters)]
        size, depth = (height, width), channels
        for conv in self.localization_convolutions:
            conv.build((None, *size, depth))
            size, depth = (max(1, size[0] // 2), max(1, size[1] // 2)), conv.filters
        self.localization_hidden = keras.layers.Dense(self.localization_units, activation="relu",
                                                      name="localization_hidden")
        self.localization_hidden.build((None, size[0] * size[1] * depth))
        self.localization_theta = keras.layers.Dense(
            6, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(IDENTITY_THETA),
            name="localization_theta")
        self.localization_theta.build((None, self.localization_units))

    def transform(self, inputs) -> tf.Tensor:
        """The localisation network's affine transform theta, float32 `[B, 2, 3]`."""
        x = tf.cast(inputs, self.compute_dtype)
        for conv in self.localization_convolutions:
            x = conv(x)
            if x.shape[1] > 1 and x.shape[2] > 1:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        theta = self.localization_theta(self.localization_hidden(x))
        return tf.reshape(tf.cast(theta, tf.float32), [-1, 2, 3])

    def call(self, inputs):
        height, width = self.output_size or tuple(inputs.shape[1:3])
        x_source, y_source = affine_grid(self.transform(inputs), height, width)
        in_height, in_width = inputs.shape[1], inputs.shape[2]
        x_pixels = (x_source + 1.0) * (in_width - 1) / 2.0
        y_pixels = (y_source + 1.0) * (in_height - 1) / 2.0
        images = tf.cast(inputs, tf.float32)
        return tf.cast(bilinear_sample(images, x_pixels, y_pixels), inputs.dtype)

    def compute_output_shape(self, input_shape):
        height, width = self.output_size or tuple(input_shape[1:3])
        return (input_shape[0], height, width, input_shape[3])

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds of the localisation network (the sampler is not counted)."""
        height, width, depth = input_shapes[0]
        total = 0
        for conv in self.localization_convolutions:
            total += 2 * height * width * 9 * depth * conv.filters
            height, width, depth = max(1, height // 2), max(1, width // 2), conv.filters
        total += 2 * height * width * depth * self.localization_units
        return total + 2 * self.localization_units * 6

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": self.output_size,
                "localization_filters": self.localization_filters,
                "localization_units": self.localization_units}
