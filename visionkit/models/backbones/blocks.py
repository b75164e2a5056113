"""Small wiring helpers shared by the own backbones and classifiers.

These are functions, not layers: they add ordinary Keras layers to a functional graph, so
every convolution, batch norm and activation stays addressable by name (for Grad-CAM,
activation maps and fine-tuning).
"""

from __future__ import annotations

import keras

__all__ = ["BATCH_NORM_EPSILON", "bn_relu", "check_width_multiplier", "conv", "conv_bn_relu",
           "scaled_width"]

# keras.applications' ResNet and DenseNet use 1.001e-5: the paper's 1e-5, nudged above
# cuDNN's minimum epsilon of 1e-5.
BATCH_NORM_EPSILON = 1.001e-5


def scaled_width(filters: int, width_multiplier: float) -> int:
    """`filters * width_multiplier` rounded to an integer, at least 1."""
    return max(1, int(round(filters * width_multiplier)))


def check_width_multiplier(width_multiplier: float) -> float:
    """Validates a `width_multiplier` argument (a positive number)."""
    if not isinstance(width_multiplier, int | float) or width_multiplier <= 0:
        raise ValueError(
            f"Expected width_multiplier to be a positive number; "
            f"received width_multiplier={width_multiplier!r}.")
    return float(width_multiplier)


def conv_bn_relu(x: keras.KerasTensor, filters: int, kernel_size: int, name: str,
                 strides: int = 1, use_bias: bool = False, relu: bool = True,
                 gamma_initializer: str = "ones") -> keras.KerasTensor:
    """Conv2D ("same" padding, He-normal init) -> BatchNormalization -> optional ReLU.

    The layers are named `{name}_conv`, `{name}_bn` and `{name}_relu`; `gamma_initializer`
    is the batch norm's scale's ("zeros" for the last one of a residual branch).
    """
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=use_bias, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON,
                                        gamma_initializer=gamma_initializer,
                                        name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def bn_relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """BatchNormalization -> ReLU (a pre-activation), named `{name}_bn` and `{name}_relu`."""
    x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def conv(x: keras.KerasTensor, filters: int, kernel_size: int, name: str, strides: int = 1
         ) -> keras.KerasTensor:
    """Conv2D ("same" padding, no bias, He-normal init) named `name`."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=False, kernel_initializer="he_normal", name=name)(x)
