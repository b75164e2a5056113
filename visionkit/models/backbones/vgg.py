"""VGG convolutional stages, returned as the P1..P5 feature dict.

Reference:
    - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
      https://arxiv.org/abs/1409.1556) (Simonyan & Zisserman, ICLR 2015; arXiv 2014)
"""

from __future__ import annotations

import keras

from visionkit.models.backbones.blocks import BATCH_NORM_EPSILON, scaled_width
from visionkit.models.common import rescale

__all__ = ["VGG_CONVS_PER_STAGE", "VGG_STAGE_FILTERS", "vgg_features"]

# Table 1 of the paper: 3x3 convolutions per stage for configurations A (11 weight
# layers), B (13), D (16) and E (19); every stage ends in a 2x2 max pool.
VGG_CONVS_PER_STAGE = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
VGG_STAGE_FILTERS = (64, 128, 256, 512, 512)


def vgg_features(inputs: keras.KerasTensor, depth: int, width_multiplier: float = 1.0,
                 batch_norm: bool = False) -> dict[str, keras.KerasTensor]:
    """Wires the VGG convolutional stages onto `inputs` (raw 0..255 pixels).

    Used by both `build_backbone("vgg16", ...)` and the `vgg16` classifier, so the
    architecture lives in one place. Layer names follow keras.applications
    (`block1_conv1`, ..., `block5_pool`).

    Levels: `P1`..`P4` are the last ReLU of stages 2..5 (before their pool, the richest
    map at that scale, as U-Net encoders use it); `P5` is the output of the last pool.

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        depth: 11, 13, 16 or 19.
        width_multiplier: scales every stage's filters. Defaults to 1.0.
        batch_norm: add batch norm after every convolution (the "VGG-BN" variant; the
            paper has none). Defaults to False.

    Returns:
        A dict `{"P1": [B, H/2, W/2, 128w], ..., "P5": [B, H/32, W/32, 512w]}`.
    """
    if depth not in VGG_CONVS_PER_STAGE:
        raise ValueError(f"Expected VGG depth in {sorted(VGG_CONVS_PER_STAGE)}; "
                         f"received depth={depth!r}.")
    x = rescale(inputs)
    features: dict[str, keras.KerasTensor] = {}
    stages = zip(VGG_CONVS_PER_STAGE[depth], VGG_STAGE_FILTERS)
    for stage, (convs, filters) in enumerate(stages, start=1):
        for index in range(1, convs + 1):
            x = keras.layers.Conv2D(
                scaled_width(filters, width_multiplier), 3, padding="same",
                activation=None if batch_norm else "relu", use_bias=not batch_norm,
                kernel_initializer="he_normal", name=f"block{stage}_conv{index}")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(
                    epsilon=BATCH_NORM_EPSILON, name=f"block{stage}_bn{index}")(x)
                x = keras.layers.ReLU(name=f"block{stage}_relu{index}")(x)
        if stage >= 2:
            features[f"P{stage - 1}"] = x
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{stage}_pool")(x)
    features["P5"] = x
    return features
