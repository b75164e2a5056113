"""`AttentionGate`: additive attention that weights a U-Net skip connection.

Reference:
    - [Attention U-Net: Learning Where to Look for the Pancreas](
      https://arxiv.org/abs/1804.03999) (Oktay et al., MIDL 2018)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.models.common import positive_ints

__all__ = ["AttentionGate"]


@keras.saving.register_keras_serializable(package="visionkit")
class AttentionGate(keras.layers.Layer):
    """Scales skip features `x` by attention coefficients computed with a gating signal.

    Oktay et al. 2018, Eq. 1-2 and Fig. 2: `x` (the encoder's skip, `[B, H, W, Cx]`) is
    projected by a `factor` x `factor` convolution with stride `factor` (W_x, no bias)
    onto the grid of the gating signal `g` (the decoder's coarser map,
    `[B, H/factor, W/factor, Cg]`), which gets a 1x1 convolution (W_g, with bias b_g).
    `q = psi^T relu(W_x x + W_g g + b_g) + b_psi` (psi a 1x1 convolution to one
    channel), `alpha = sigmoid(q)`, resized back to `H x W` bilinearly
    (`tf.image.resize`, half-pixel centres) and multiplied into `x`.

    Args:
        inter_channels: channels of the additive attention's intermediate map F_int.
        factor: ratio between the sizes of `x` and `g`. Defaults to 2.

    Input shape:
        `[x [B, H, W, Cx], g [B, H/factor, W/factor, Cg]]`; H and W multiples of
        `factor`.

    Output shape:
        `[B, H, W, Cx]`.

    Returns:
        `x * alpha`, alpha in 0..1 per position (shared by all channels).

    Raises:
        ValueError: for `inter_channels` or `factor` below 1.

    Example:

    >>> import numpy as np
    >>> gate = AttentionGate(inter_channels=4)
    >>> gate([np.ones((1, 8, 6, 3), "float32"), np.ones((1, 4, 3, 5), "float32")]).shape
    TensorShape([1, 8, 6, 3])
    """

    def __init__(self, inter_channels: int, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inter_channels, self.factor = positive_ints(inter_channels=inter_channels,
                                                         factor=factor)

    def build(self, input_shape):
        x_shape, g_shape = input_shape
        self.skip_projection = keras.layers.Conv2D(
            self.inter_channels, self.factor, strides=self.factor, use_bias=False,
            name="skip_projection")
        self.gating_projection = keras.layers.Conv2D(self.inter_channels, 1,
                                                     name="gating_projection")
        self.psi = keras.layers.Conv2D(1, 1, name="psi")
        self.skip_projection.build((None, None, None, int(x_shape[-1])))
        self.gating_projection.build((None, None, None, int(g_shape[-1])))
        self.psi.build((None, None, None, self.inter_channels))

    def coefficients(self, inputs):
        """The attention coefficients alpha, `[B, H, W, 1]` in 0..1."""
        x, g = inputs
        joint = tf.nn.relu(self.skip_projection(x) + self.gating_projection(g))
        alpha = tf.sigmoid(self.psi(joint))
        return tf.image.resize(alpha, tf.shape(x)[1:3], method="bilinear")

    def call(self, inputs):
        x = inputs[0]
        return x * tf.cast(self.coefficients(inputs), x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def flops_per_image(self, input_shapes) -> int:
        """2 x multiply-adds of W_x, W_g and psi on the gating grid."""
        (height, width, skip_channels), (_, _, gating_channels) = input_shapes[:2]
        positions = (height // self.factor) * (width // self.factor)
        per_position = (self.factor ** 2 * skip_channels + gating_channels + 1)
        return 2 * positions * self.inter_channels * per_position

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "inter_channels": self.inter_channels,
                "factor": self.factor}
