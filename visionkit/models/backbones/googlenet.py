"""GoogLeNet (Inception v1) trunk, as the P1..P5 dict, and its auxiliary classifiers.

Reference:
    - [Going Deeper with Convolutions](https://arxiv.org/abs/1409.4842)
      (Szegedy et al., CVPR 2015), Table 1, Fig. 3 and Section 5
"""

from __future__ import annotations

import keras

from visionkit.models.backbones.blocks import scaled_width
from visionkit.models.common import rescale
from visionkit.models.layers.local_response_normalization import LocalResponseNormalization

__all__ = ["GOOGLENET_MODULES", "auxiliary_classifier", "googlenet_features",
           "googlenet_inception_module"]

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj of every module.
GOOGLENET_MODULES = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
# Section 5: the auxiliary classifiers sit on the outputs of 4a and 4d.
AUXILIARY_TAPS = ("inception4a", "inception4d")
_AUX_POOL, _AUX_POOL_STRIDE, _AUX_FILTERS, _AUX_UNITS, _AUX_DROPOUT = 5, 3, 128, 1024, 0.7


def _conv(x: keras.KerasTensor, filters: int, kernel: int, name: str, strides: int = 1
          ) -> keras.KerasTensor:
    """Convolution with bias and ReLU, the paper's only kind (it has no batch norm)."""
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                               activation="relu", name=name)(x)


def _pool(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)


def googlenet_inception_module(x: keras.KerasTensor, filters: tuple[int, ...], name: str,
                               width_multiplier: float = 1.0) -> keras.KerasTensor:
    """Fig. 3(b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1, concatenated."""
    one, three_reduce, three, five_reduce, five, projection = (
        scaled_width(f, width_multiplier) for f in filters)
    branch1 = _conv(x, one, 1, f"{name}_1x1")
    branch3 = _conv(_conv(x, three_reduce, 1, f"{name}_3x3_reduce"), three, 3, f"{name}_3x3")
    branch5 = _conv(_conv(x, five_reduce, 1, f"{name}_5x5_reduce"), five, 5, f"{name}_5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    pooled = _conv(pooled, projection, 1, f"{name}_pool_proj")
    return keras.layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, pooled])


def googlenet_features(inputs: keras.KerasTensor, width_multiplier: float = 1.0,
                       taps: tuple[str, ...] = ()) -> dict[str, keras.KerasTensor]:
    """Wires GoogLeNet's trunk (Table 1) onto `inputs` (raw 0..255 pixels).

    conv1 7x7/2 (64), 3x3/2 max pool, local response normalisation; conv2 1x1 (64) and
    3x3 (192), normalisation, 3x3/2 max pool; modules 3a, 3b, pool, 4a..4e, pool, 5a,
    5b. Every convolution has a bias and ReLU.

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        taps: module names whose outputs are also returned (for auxiliary heads).

    Returns:
        `{"P1": conv1 [B, H/2, W/2, 64w], "P2": conv2 3x3 [H/4, 192w], "P3": 3b
        [H/8, 480w], "P4": 4e [H/16, 832w], "P5": 5b [H/32, 1024w]}` plus the taps.
    """
    x = rescale(inputs)
    x = _conv(x, scaled_width(64, width_multiplier), 7, "conv1", strides=2)
    features = {"P1": x}
    x = LocalResponseNormalization(name="norm1")(_pool(x, "pool1"))
    x = _conv(x, scaled_width(64, width_multiplier), 1, "conv2_reduce")
    x = _conv(x, scaled_width(192, width_multiplier), 3, "conv2")
    features["P2"] = x
    x = _pool(LocalResponseNormalization(name="norm2")(x), "pool2")
    for module, filters in GOOGLENET_MODULES.items():
        x = googlenet_inception_module(x, filters, module, width_multiplier)
        if module in taps:
            features[module] = x
        if module == "inception3b":
            features["P3"] = x
            x = _pool(x, "pool3")
        elif module == "inception4e":
            features["P4"] = x
            x = _pool(x, "pool4")
    features["P5"] = x
    return features


def auxiliary_classifier(x: keras.KerasTensor, num_classes: int, name: str,
                         width_multiplier: float = 1.0, activation: str | None = "softmax"
                         ) -> keras.KerasTensor:
    """Section 5: 5x5/3 average pool, 1x1 conv (128) ReLU, dense 1024 ReLU, 70% dropout,
    dense classifier (float32)."""
    pool = min(_AUX_POOL, x.shape[1], x.shape[2])
    x = keras.layers.AveragePooling2D(pool, strides=_AUX_POOL_STRIDE, name=f"{name}_pool")(x)
    x = _conv(x, scaled_width(_AUX_FILTERS, width_multiplier), 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(scaled_width(_AUX_UNITS, width_multiplier), activation="relu",
                           name=f"{name}_fc")(x)
    x = keras.layers.Dropout(_AUX_DROPOUT, name=f"{name}_dropout")(x)
    return keras.layers.Dense(num_classes, activation=activation, dtype="float32",
                              name=name)(x)
