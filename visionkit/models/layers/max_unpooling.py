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


# Values within this fraction of their channel's largest activation (per image) of the
# window's maximum share the unpooled value (see `max_pool_switches`).
TIE_TOLERANCE = 0.02


def max_pool_switches(features: tf.Tensor, tie_tolerance: float = TIE_TOLERANCE) -> tf.Tensor:
    """The switches of a 2x2 / stride-2 max pool (padding "same"), ties shared.

    With `tie_tolerance=0`, for every window and channel exactly one position is 1: the
    first maximum in row-major order within the window (the position
    `tf.nn.max_pool_with_argmax` reports when there are no ties).

    With `tie_tolerance > 0` (the default), a position's switch is
    `relu(x - (max - band)) / band`, with `band = tie_tolerance * max|features|` over
    the image's channel: 1 at the window's maximum (and at every exact tie), falling
    linearly to 0 for values `band` below it, 0 further down. A window with one clear
    maximum is one-hot as before; near ties get a share. The switches are then a
    continuous function of `features`: a value that another runtime computes a few
    float32 rounding errors higher or lower (measured up to 1.2e-5 between TensorFlow
    and LiteRT on a trained SegNet's encoder) changes the switch by that error divided
    by `band`, where a first-maximum rule moves the whole value to the other pixel
    whenever the rounding reorders two near-equal activations (0.27 in probabilities
    seen once on validation images; int8 quantization, with steps of 1/255 of the
    range, reorders most windows).

    Built from reshapes, reductions and elementwise ops (every runtime has them), so it
    compiles with XLA and converts to LiteRT builtins and ONNX. No gradient flows
    through the switches (as with the argmax of `tf.nn.max_pool_with_argmax`).

    Args:
        features: `[B, H, W, C]` the tensor before pooling.
        tie_tolerance: the band as a fraction of each channel's largest absolute
            activation in the image; 0 for the first-maximum rule. Defaults to 0.02.

    Returns:
        A tensor of `features`' dtype, `[B, ceil(H/2), ceil(W/2), C, 4]`: switch weights
        in [0, 1] over the window positions (0,0), (0,1), (1,0), (1,1).

    Raises:
        ValueError: if `tie_tolerance` is negative or not below 1.
    """
    if not 0 <= float(tie_tolerance) < 1:
        raise ValueError(f"Expected 0 <= tie_tolerance < 1; received {tie_tolerance!r}.")
    dtype = features.dtype
    features = tf.cast(features, tf.float32)  # float16 would round the band away
    padded = _pad_to_even(features)
    shape = tf.shape(padded)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    windows = tf.reshape(padded, [batch, height // 2, POOL_SIZE, width // 2, POOL_SIZE,
                                  channels])
    # -> [B, H/2, W/2, C, 2, 2] -> window positions flattened in row-major order.
    windows = tf.transpose(windows, [0, 1, 3, 5, 2, 4])
    windows = tf.reshape(windows, [batch, height // 2, width // 2, channels,
                                   POOL_SIZE * POOL_SIZE])
    maximum = tf.reduce_max(windows, axis=-1, keepdims=True)
    if float(tie_tolerance) == 0:
        is_max = tf.cast(tf.equal(windows, maximum), tf.int32)
        first = tf.logical_and(tf.equal(is_max, 1), tf.equal(tf.cumsum(is_max, axis=-1), 1))
        return tf.stop_gradient(tf.cast(first, dtype))
    scale = tf.reduce_max(tf.abs(features), axis=[1, 2])[:, tf.newaxis, tf.newaxis, :,
                                                          tf.newaxis]
    # An all-zero channel (ReLU) ties everywhere: the smallest normal float keeps the
    # band positive, so every position gets the full value.
    band = tf.maximum(float(tie_tolerance) * scale, 1.1754944e-38)
    switches = tf.nn.relu(windows - (maximum - band)) / band
    return tf.stop_gradient(tf.cast(tf.minimum(switches, 1.0), dtype))


@keras.saving.register_keras_serializable(package="visionkit")
class MaxUnpooling2D(keras.layers.Layer):
    """Max unpooling: each value goes back to where its 2x2 max pool found the maximum.

    Called on `[values, features]`: `values` are the decoder's `[B, h, w, C]` maps at the
    pooled resolution, `features` the encoder's tensor *before* its 2x2 / stride-2 max
    pool (`MaxPooling2D(2, padding="same")`). The layer recomputes the pool's switches from
    `features` and writes each value at its window's maximum, zeros elsewhere, so the
    output has `features`' size. Positions within `tie_tolerance` (a fraction of the
    channel's largest activation) of the maximum get a linearly falling share of the
    value, exact ties the whole value (`max_pool_switches`): the output is then a
    continuous function of `features`, and exports to LiteRT or ONNX, whose rounding
    differs from TensorFlow's, or quantized to int8, place the values where Keras does.
    With `tie_tolerance=0` each value goes to the first maximum in row-major order.

    Args:
        tie_tolerance: see above. Defaults to 0.02.

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

    def __init__(self, tie_tolerance: float = TIE_TOLERANCE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= float(tie_tolerance) < 1:
            raise ValueError(f"Expected 0 <= tie_tolerance < 1; received {tie_tolerance!r}.")
        self.tie_tolerance = float(tie_tolerance)

    def call(self, inputs):
        values, features = inputs
        switches = tf.cast(max_pool_switches(features, self.tie_tolerance), values.dtype)
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
        return {**super().get_config(), "tie_tolerance": self.tie_tolerance}
