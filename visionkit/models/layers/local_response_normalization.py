"""`LocalResponseNormalization`: AlexNet's normalisation across neighbouring channels.

Reference:
    - [ImageNet Classification with Deep Convolutional Neural Networks](
      https://papers.nips.cc/paper/4824) (Krizhevsky, Sutskever & Hinton, NeurIPS 2012),
      Section 3.3
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["LocalResponseNormalization"]


@keras.saving.register_keras_serializable(package="visionkit")
class LocalResponseNormalization(keras.layers.Layer):
    """`b_c = a_c / (k + alpha * sum_{c'} a_{c'}^2) ** beta` over `size` adjacent channels.

    The sum runs over channels `c - size // 2 .. c + size // 2` (clipped at the ends).
    The defaults are the paper's k = 2, n = 5, alpha = 1e-4, beta = 0.75; alpha is not
    divided by n, as in the paper's formula (`tf.nn.local_response_normalization` with
    `depth_radius = size // 2`).

    Args:
        size: n, the number of channels summed (odd). Defaults to 5.
        bias: k. Defaults to 2.0.
        alpha: alpha. Defaults to 1e-4.
        beta: beta. Defaults to 0.75.

    Input shape:
        `[B, H, W, C]`.

    Output shape:
        `[B, H, W, C]`.

    Returns:
        The normalised tensor.

    Raises:
        ValueError: for an even or non-positive `size`.

    Example:

    >>> import numpy as np
    >>> x = np.full((1, 1, 1, 3), 10.0, "float32")
    >>> y = LocalResponseNormalization()(x).numpy()[0, 0, 0]
    >>> bool(np.isclose(y[0], 10.0 / (2.0 + 1e-4 * 300.0) ** 0.75))
    True
    """

    def __init__(self, size: int = 5, bias: float = 2.0, alpha: float = 1e-4,
                 beta: float = 0.75, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(size) < 1 or int(size) % 2 == 0:
            raise ValueError(f"Expected an odd size >= 1; received size={size!r}.")
        self.size, self.bias, self.alpha, self.beta = int(size), float(bias), float(alpha), float(beta)

    def call(self, inputs):
        normalized = tf.nn.local_response_normalization(
            tf.cast(inputs, tf.float32), depth_radius=self.size // 2, bias=self.bias,
            alpha=self.alpha, beta=self.beta)
        return tf.cast(normalized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}
