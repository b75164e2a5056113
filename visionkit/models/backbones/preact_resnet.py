"""Pre-activation ResNet stages (BN -> ReLU -> conv), as the P1..P5 dict, and the
Wide ResNet trunk.

References:
    - [Identity Mappings in Deep Residual Networks](https://arxiv.org/abs/1603.05027)
      (He, Zhang, Ren & Sun, ECCV 2016), Fig. 4(e): full pre-activation
    - [Wide Residual Networks](https://arxiv.org/abs/1605.07146)
      (Zagoruyko & Komodakis, BMVC 2016), Table 1
"""

from __future__ import annotations

import keras

from visionkit.models.backbones.blocks import bn_relu, conv, scaled_width
from visionkit.models.backbones.residual_options import (
    branch_attention,
    check_attention,
    check_stochastic_depth,
    merge_branch,
    non_local_after,
    survival_probabilities,
)
from visionkit.models.backbones.resnet import residual_stages
from visionkit.models.common import rescale

__all__ = ["preact_block", "preact_resnet_features", "wide_resnet_features",
           "WIDE_RESNET_BASE_WIDTHS"]

_STEM_FILTERS = 64
_BOTTLENECK_EXPANSION = 4
# Table 1 of Zagoruyko & Komodakis: conv1 16 filters; groups conv2..conv4 of
# 16k, 32k, 64k filters, strides 1, 2, 2.
WIDE_RESNET_BASE_WIDTHS = (16, 32, 64)
_WIDE_STEM_FILTERS = 16


def preact_block(x: keras.KerasTensor, filters: int, strides: int, name: str,
                 bottleneck: bool = False, dropout: float = 0.0,
                 attention: str | None = None, survival: float = 1.0) -> keras.KerasTensor:
    """One full pre-activation residual unit (He et al. 2016, Fig. 4e).

    Basic: BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3; bottleneck: BN-ReLU-conv1x1,
    BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1 to 4x filters. The shortcut is the
    identity, or a 1x1 convolution of the pre-activated input where the shape changes
    (as the paper's and the Wide ResNet code do). Convolutions have no bias (batch norm
    follows each one). Layers are named `{name}_preact_bn`, `{name}_1_conv`, ...
    """
    out_filters = filters * _BOTTLENECK_EXPANSION if bottleneck else filters
    preact = bn_relu(x, f"{name}_preact")
    if strides == 1 and x.shape[-1] == out_filters:
        shortcut = x
    else:
        shortcut = conv(preact, out_filters, 1, f"{name}_0_conv", strides)
    if bottleneck:
        y = conv(preact, filters, 1, f"{name}_1_conv")
        y = conv(bn_relu(y, f"{name}_1"), filters, 3, f"{name}_2_conv", strides)
        y = conv(bn_relu(y, f"{name}_2"), out_filters, 1, f"{name}_3_conv")
    else:
        y = conv(preact, filters, 3, f"{name}_1_conv", strides)
        y = bn_relu(y, f"{name}_1")
        if dropout:
            y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
        y = conv(y, filters, 3, f"{name}_2_conv")
    y = branch_attention(y, attention, name)
    return merge_branch(shortcut, y, survival, name=f"{name}_add")


def preact_resnet_features(inputs: keras.KerasTensor, depth: int,
                           width_multiplier: float = 1.0, attention: str | None = None,
                           stochastic_depth: float = 0.0) -> dict[str, keras.KerasTensor]:
    """Wires a pre-activation ResNet (ImageNet layout) onto `inputs` (raw 0..255 pixels).

    The stem is a 7x7 stride-2 convolution with batch norm and ReLU and a 3x3 stride-2
    max pool; the stages have the block counts of ResNet-18/34/50 (Table 1 of He et al.
    2015) with pre-activation units; a final BN-ReLU follows the last stage (named
    `post_bn`, `post_relu`).

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        depth: 18, 34 or 50.
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        attention: None, "se", "cbam" or "non_local" (see `resnet_features`).
            Defaults to None.
        stochastic_depth: the last block's drop probability. Defaults to 0.0.

    Returns:
        `{"P1": stem [B, H/2, W/2, 64w], "P2".."P4": stage outputs, "P5": the last
        stage after the final BN-ReLU [B, H/32, W/32, 512w or 2048w]}`.
    """
    x = rescale(inputs)
    x = conv(x, scaled_width(_STEM_FILTERS, width_multiplier), 7, "conv1_conv", strides=2)
    x = bn_relu(x, "conv1")
    features = {"P1": x}
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)

    def block(x: keras.KerasTensor, filters: int, strides: int, name: str, bottleneck: bool,
              survival: float) -> keras.KerasTensor:
        return preact_block(x, filters, strides, name, bottleneck=bottleneck,
                            attention=attention, survival=survival)

    features.update(residual_stages(x, depth, width_multiplier, attention, stochastic_depth,
                                    block))
    features["P5"] = bn_relu(features["P5"], "post")
    return features


def wide_resnet_features(inputs: keras.KerasTensor, depth: int, widen_factor: float,
                         dropout: float = 0.0, attention: str | None = None,
                         stochastic_depth: float = 0.0) -> keras.KerasTensor:
    """Wires the WRN-d-k trunk (CIFAR layout) onto `inputs` (raw 0..255 pixels).

    conv1: 3x3, 16 filters; three groups of N = (d - 4) / 6 basic pre-activation blocks
    of 16k, 32k and 64k filters (strides 1, 2, 2), dropout between a block's two
    convolutions if asked; a final BN-ReLU (Zagoruyko & Komodakis 2016, Table 1).

    Returns:
        The last feature map `[B, H/4, W/4, 64k]` after the final BN-ReLU.

    Raises:
        ValueError: if `(depth - 4)` is not a positive multiple of 6, or `widen_factor`
            is not positive.
    """
    if int(depth) != depth or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"Expected a Wide ResNet depth d with (d - 4) a positive multiple "
                         f"of 6 (10, 16, 22, 28, 40, ...); received depth={depth!r}.")
    if not isinstance(widen_factor, int | float) or widen_factor <= 0:
        raise ValueError(f"Expected a positive widen_factor k; received "
                         f"widen_factor={widen_factor!r}.")
    check_attention(attention)
    blocks = (int(depth) - 4) // 6
    survivals = iter(survival_probabilities(3 * blocks, check_stochastic_depth(stochastic_depth)))
    x = rescale(inputs)
    x = conv(x, _WIDE_STEM_FILTERS, 3, "conv1_conv")
    for group, base in enumerate(WIDE_RESNET_BASE_WIDTHS):
        stage = group + 2
        filters = scaled_width(base, widen_factor)
        for block_index in range(1, blocks + 1):
            strides = 2 if block_index == 1 and group > 0 else 1
            x = preact_block(x, filters, strides, f"conv{stage}_block{block_index}",
                             dropout=dropout, attention=attention, survival=next(survivals))
        x = non_local_after(x, attention, stage)
    return bn_relu(x, "post")
