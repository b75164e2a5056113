"""`PadToMultiple`: pads images at the bottom/right to sizes a network's poolings divide.

A U-Net of depth 4 halves its feature maps four times, so it needs sides that are
multiples of 16; DeepLab needs 32. This layer lets a segmenter take any image size: it
mirrors the image into the missing rows and columns (the mirror extrapolation the U-Net
paper uses at the image border), and `CropToReference` cuts the per-pixel output back
to the input's size, so every output pixel belongs to one input pixel.

Reference:
    - [U-Net: Convolutional Networks for Biomedical Image Segmentation](
      https://arxiv.org/abs/1505.04597) (Ronneberger, Fischer & Brox, MICCAI 2015)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.models.common import positive_ints

__all__ = ["PadToMultiple", "padded_size"]


def padded_size(size: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= `size`."""
    return -(-int(size) // int(multiple)) * int(multiple)


def _mirror_pad(images: tf.Tensor, axis: int, amount: tf.Tensor) -> tf.Tensor:
    """Pads `amount` mirrored rows (axis 1) or columns (axis 2) at the end of `axis`.

    Symmetric padding adds at most the side's own length at once, so a side shorter
    than its padding is mirrored in several steps.
    """

    def pending(x, left):
        return left > 0

    def mirror(x, left):
        step = tf.minimum(left, tf.shape(x)[axis])
        paddings = tf.scatter_nd([[axis, 1]], tf.reshape(step, [1]), [4, 2])
        return tf.pad(x, paddings, mode="SYMMETRIC"), left - step

    padded, _ = tf.while_loop(pending, mirror, (images, amount),
                              shape_invariants=(tf.TensorShape([None] * 4), amount.shape))
    return padded


@keras.saving.register_keras_serializable(package="visionkit")
class PadToMultiple(keras.layers.Layer):
    """Pads height and width at the bottom/right to multiples of `multiple`.

    The added rows and columns mirror the image ("symmetric": the border row repeated,
    then the rows before it), so the network sees image-like content there rather than
    a black band. A side smaller than its padding is padded by repeated mirroring.

    Args:
        multiple: the multiple, e.g. 16 for four 2x2 poolings.

    Input shape:
        `[B, H, W, C]`.

    Output shape:
        `[B, ceil(H / multiple) * multiple, ceil(W / multiple) * multiple, C]`.

    Example:

    >>> import numpy as np
    >>> layer = PadToMultiple(4)
    >>> out = layer(np.arange(6, dtype="float32").reshape(1, 2, 3, 1))
    >>> out.shape, out[0, :, :, 0].numpy().tolist()
    (TensorShape([1, 4, 4, 1]), [[0.0, 1.0, 2.0, 2.0], [3.0, 4.0, 5.0, 5.0], \
[3.0, 4.0, 5.0, 5.0], [0.0, 1.0, 2.0, 2.0]])
    """

    def __init__(self, multiple: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        (self.multiple,) = positive_ints(multiple=multiple)

    def call(self, inputs):
        static = self.compute_output_shape(tuple(inputs.shape))
        for axis in (1, 2):
            inputs = _mirror_pad(inputs, axis, (-tf.shape(inputs)[axis]) % self.multiple)
        return tf.ensure_shape(inputs, static)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] = padded_size(shape[axis], self.multiple)
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiple": self.multiple}
