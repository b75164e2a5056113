"""ResNet stages (basic and bottleneck residual blocks), returned as the P1..P5 dict.

References:
    - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
      (He et al., CVPR 2016; arXiv 2015)
    - [Bag of Tricks for Image Classification with Convolutional Neural Networks](
      https://arxiv.org/abs/1812.01187) (He et al., CVPR 2019), section 4.1: ResNet-C's
      deep stem (`stem="deep"`)
    - [Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour](
      https://arxiv.org/abs/1706.02677) (Goyal et al. 2017), section 5.1: the last batch
      norm of each residual branch starts with gamma = 0 (`zero_init_residual`)
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from visionkit.models.backbones.blocks import conv_bn_relu, scaled_width
from visionkit.models.backbones.residual_options import (
    branch_attention,
    check_attention,
    check_stochastic_depth,
    merge_branch,
    non_local_after,
    survival_probabilities,
)
from visionkit.models.common import rescale

__all__ = ["RESNET_BLOCKS", "STEMS", "residual_stages", "resnet_features"]

# Table 1 of the paper: residual blocks per stage (conv2_x .. conv5_x) and block type.
RESNET_BLOCKS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
_STEM_FILTERS = 64
STEMS = ("standard", "deep")
_BOTTLENECK_EXPANSION = 4


def _shortcut(x: keras.KerasTensor, filters: int, strides: int, name: str
              ) -> keras.KerasTensor:
    """Identity, or a 1x1 projection (+ batch norm) when the shape changes (option B)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn_relu(x, filters, 1, strides=strides, use_bias=True, relu=False,
                        name=f"{name}_0")


def _basic_block(x: keras.KerasTensor, filters: int, strides: int, name: str,
                 attention: str | None = None, survival: float = 1.0,
                 last_gamma: str = "ones") -> keras.KerasTensor:
    """Two 3x3 convolutions (ResNet-18/34); `last_gamma` initialises the second's batch norm."""
    shortcut = _shortcut(x, filters, strides, name)
    y = conv_bn_relu(x, filters, 3, strides=strides, use_bias=True, name=f"{name}_1")
    y = conv_bn_relu(y, filters, 3, use_bias=True, relu=False, name=f"{name}_2",
                     gamma_initializer=last_gamma)
    y = branch_attention(y, attention, name)
    y = merge_branch(shortcut, y, survival, name=f"{name}_add")
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x: keras.KerasTensor, filters: int, strides: int, name: str,
                      attention: str | None = None, survival: float = 1.0,
                      last_gamma: str = "ones") -> keras.KerasTensor:
    """1x1 reduce, 3x3, 1x1 expand by 4 (ResNet-50 and deeper).

    `last_gamma` initialises the batch norm of the expanding 1x1 convolution.
    The stride sits on the 3x3 convolution (the "v1.5" placement torchvision uses); the
    parameter count is the same as with the stride on the first 1x1.
    """
    shortcut = _shortcut(x, filters * _BOTTLENECK_EXPANSION, strides, name)
    y = conv_bn_relu(x, filters, 1, use_bias=True, name=f"{name}_1")
    y = conv_bn_relu(y, filters, 3, strides=strides, use_bias=True, name=f"{name}_2")
    y = conv_bn_relu(y, filters * _BOTTLENECK_EXPANSION, 1, use_bias=True, relu=False,
                     name=f"{name}_3", gamma_initializer=last_gamma)
    y = branch_attention(y, attention, name)
    y = merge_branch(shortcut, y, survival, name=f"{name}_add")
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _stem(x: keras.KerasTensor, filters: int, stem: str) -> keras.KerasTensor:
    """conv1: one 7x7 stride-2 convolution ("standard"), or three 3x3 ("deep", ResNet-C)."""
    if stem == "standard":
        return conv_bn_relu(x, filters, 7, strides=2, use_bias=True, name="conv1")
    if stem != "deep":
        raise ValueError(f"Expected stem to be one of {STEMS}; received stem={stem!r}.")
    half = max(1, filters // 2)
    x = conv_bn_relu(x, half, 3, strides=2, use_bias=True, name="conv1_1")
    x = conv_bn_relu(x, half, 3, use_bias=True, name="conv1_2")
    return conv_bn_relu(x, filters, 3, use_bias=True, name="conv1")


def resnet_features(inputs: keras.KerasTensor, depth: int, width_multiplier: float = 1.0,
                    attention: str | None = None, stochastic_depth: float = 0.0,
                    stem_pool: bool = True, zero_init_residual: bool = False,
                    stem: str = "standard") -> dict[str, keras.KerasTensor]:
    """Wires a ResNet trunk onto `inputs` (raw 0..255 pixels).

    Used by both `build_backbone("resnet50", ...)` and the `resnet50` classifier. Layer
    names follow keras.applications (`conv1_conv`, `conv2_block1_1_conv`, ...,
    `conv5_block3_out`). Every convolution is He-normal initialised, has a bias and is
    followed by batch norm, as in keras.applications' ResNet50 (the biases are redundant
    before batch norm, but keep the parameter count equal to that reference:
    25,636,712 for the 1000-class ResNet-50). Shortcuts are identities, or 1x1
    projections with batch norm where the shape changes.

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        depth: 18, 34 or 50.
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        attention: None, "se" (squeeze-and-excitation on every residual branch, before
            the sum), "cbam" (likewise) or "non_local" (one non-local block after
            conv4_x). Defaults to None.
        stochastic_depth: drop probability of the last residual block (1 - p_L); block
            l of L is dropped with probability l / L times it (Huang et al. 2016; they
            use 0.5). 0 keeps every block. Defaults to 0.0.
        stem_pool: the 3x3 stride-2 max pool after conv1; False leaves it out, so P2..P5
            are at 1/2..1/16 of the input (the classifiers do so on small inputs).
            Defaults to True.
        zero_init_residual: start the last batch norm of every residual branch with
            gamma = 0, so each block starts as its shortcut and the network as a
            shallow one (Goyal et al. 2017, section 5.1; torchvision's
            `zero_init_residual`, timm's `zero_init_last`). False keeps the paper's
            gamma = 1. Defaults to False.
        stem: conv1 as "standard" (the paper's one 7x7 stride-2 convolution) or "deep"
            (ResNet-C of He et al. 2019, "Bag of Tricks for Image Classification with
            Convolutional Neural Networks", section 4.1: three 3x3 convolutions of
            32, 32 and 64 filters times `width_multiplier`, the first with stride 2;
            timm's `stem_type="deep"`). P1 has the same shape either way. Defaults to
            "standard".

    Returns:
        A dict `{"P1": conv1 output [B, H/2, W/2, 64w], "P2": conv2_x output
        [B, H/4, W/4, 64w or 256w], ..., "P5": conv5_x output [B, H/32, W/32, ...]}`.

    Raises:
        ValueError: for a stem not in `STEMS`, and as `residual_stages`.
    """
    x = rescale(inputs)
    x = _stem(x, scaled_width(_STEM_FILTERS, width_multiplier), stem)
    features = {"P1": x}
    if stem_pool:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    last_gamma = "zeros" if zero_init_residual else "ones"

    def block(x: keras.KerasTensor, filters: int, strides: int, name: str, bottleneck: bool,
              survival: float) -> keras.KerasTensor:
        wire = _bottleneck_block if bottleneck else _basic_block
        return wire(x, filters, strides, name=name, attention=attention, survival=survival,
                    last_gamma=last_gamma)

    return {**features, **residual_stages(x, depth, width_multiplier, attention,
                                          stochastic_depth, block)}


def residual_stages(x: keras.KerasTensor, depth: int, width_multiplier: float,
                    attention: str | None, stochastic_depth: float,
                    block: Callable[..., keras.KerasTensor]) -> dict[str, keras.KerasTensor]:
    """Wires ResNet's four stages (conv2_x..conv5_x, Table 1) onto the stem's output `x`.

    Shared by the ResNet and pre-activation ResNet trunks: stage s (2..5) has
    `RESNET_BLOCKS[depth]` blocks of 64 * 2^(s - 2) filters (times `width_multiplier`),
    the first with stride 2 from conv3_x on; block l of L survives with the linearly
    decaying probability of `stochastic_depth`; a non-local block follows conv4_x with
    `attention="non_local"`.

    Args:
        x: the stem's output.
        depth: 18, 34 or 50.
        width_multiplier: scales every block's filters.
        attention: None, "se", "cbam" or "non_local".
        stochastic_depth: drop probability of the last block.
        block: `block(x, filters, strides, name, bottleneck, survival)` wires one block
            named `conv{stage}_block{index}`.

    Returns:
        `{"P2": conv2_x output, ..., "P5": conv5_x output}`.

    Raises:
        ValueError: for a depth not in `RESNET_BLOCKS`, a bad `attention` or
            `stochastic_depth`.
    """
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"Expected ResNet depth in {sorted(RESNET_BLOCKS)}; "
                         f"received depth={depth!r}.")
    check_attention(attention)
    block_type, blocks_per_stage = RESNET_BLOCKS[depth]
    survivals = iter(survival_probabilities(sum(blocks_per_stage),
                                            check_stochastic_depth(stochastic_depth)))
    features = {}
    for stage_index, blocks in enumerate(blocks_per_stage):
        stage = stage_index + 2
        filters = scaled_width(_STEM_FILTERS * 2**stage_index, width_multiplier)
        for block_index in range(1, blocks + 1):
            strides = 2 if block_index == 1 and stage > 2 else 1
            x = block(x, filters, strides, f"conv{stage}_block{block_index}",
                      block_type == "bottleneck", next(survivals))
        x = non_local_after(x, attention, stage)
        features[f"P{stage}"] = x
    return features
