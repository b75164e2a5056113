"""DenseNet-BC built by visionkit (growth rate, bottlenecks, compression), as the P1..P5
dict.

Reference:
    - [Densely Connected Convolutional Networks](https://arxiv.org/abs/1608.06993)
      (Huang, Liu, van der Maaten & Weinberger, CVPR 2017), Table 1 and Section 3
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from visionkit.models.backbones.blocks import BATCH_NORM_EPSILON, bn_relu, conv
from visionkit.models.common import rescale

__all__ = ["DENSENET_BLOCKS", "densenet_bc_features"]

# Table 1: dense layers per block for DenseNet-121, -169, -201 and -264.
DENSENET_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}
# Section 3 ("Implementation Details"): the 1x1 bottleneck gives 4k feature maps, the
# stem 2k; DenseNet-BC compresses each transition by theta = 0.5.
_BOTTLENECK_FACTOR = 4
_STEM_FACTOR = 2


def _dense_layer(x: keras.KerasTensor, growth_rate: int, name: str) -> keras.KerasTensor:
    """BN-ReLU-Conv(1x1, 4k)-BN-ReLU-Conv(3x3, k), concatenated to the input ("B")."""
    y = conv(bn_relu(x, f"{name}_0"), _BOTTLENECK_FACTOR * growth_rate, 1, f"{name}_1_conv")
    y = conv(bn_relu(y, f"{name}_1"), growth_rate, 3, f"{name}_2_conv")
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def densenet_bc_features(inputs: keras.KerasTensor, blocks: Sequence[int] = DENSENET_BLOCKS[121],
                         growth_rate: int = 32, compression: float = 0.5
                         ) -> dict[str, keras.KerasTensor]:
    """Wires DenseNet-BC (ImageNet layout) onto `inputs` (raw 0..255 pixels).

    Stem: 7x7 stride-2 convolution of 2k filters, BN-ReLU, 3x3 stride-2 max pool. Dense
    blocks of bottleneck layers (growth rate k); between blocks a transition: BN-ReLU,
    a 1x1 convolution to `floor(compression * m)` of the block's m feature maps, 2x2
    average pooling. A final BN-ReLU ends the trunk. Layer names follow
    keras.applications' DenseNet (`conv1_conv`, `conv2_block1_1_conv`, `pool2_conv`,
    `relu`).

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        blocks: dense layers per block (four blocks). Defaults to DenseNet-121's
            (6, 12, 24, 16).
        growth_rate: k. Defaults to 32.
        compression: theta in (0, 1]. Defaults to 0.5.

    Returns:
        `{"P1": conv1_relu [B, H/2, W/2, 2k], "P2".."P4": the transitions' BN-ReLU
        (`pool2_relu`, ...), "P5": the final BN-ReLU [B, H/32, W/32, ...]}`.

    Raises:
        ValueError: for anything but four positive block sizes, a growth rate below 1
            or a compression outside (0, 1].
    """
    blocks = tuple(int(b) for b in blocks)
    if len(blocks) != 4 or min(blocks) < 1:
        raise ValueError(f"Expected four positive dense-block sizes; received blocks={blocks!r}.")
    if int(growth_rate) < 1:
        raise ValueError(f"Expected growth_rate >= 1; received growth_rate={growth_rate!r}.")
    if not 0.0 < float(compression) <= 1.0:
        raise ValueError(f"Expected compression in (0, 1]; received compression={compression!r}.")
    x = rescale(inputs)
    x = conv(x, _STEM_FACTOR * int(growth_rate), 7, "conv1_conv", strides=2)
    x = bn_relu(x, "conv1")
    features = {"P1": x}
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for index, layers in enumerate(blocks):
        stage = index + 2
        for layer_index in range(1, layers + 1):
            x = _dense_layer(x, int(growth_rate), f"conv{stage}_block{layer_index}")
        if stage < 5:
            x = bn_relu(x, f"pool{stage}")
            features[f"P{stage}"] = x
            x = conv(x, int(x.shape[-1] * float(compression)), 1, f"pool{stage}_conv")
            x = keras.layers.AveragePooling2D(2, strides=2, padding="same",
                                              name=f"pool{stage}_pool")(x)
    x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name="bn")(x)
    features["P5"] = keras.layers.ReLU(name="relu")(x)
    return features
