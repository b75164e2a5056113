"""DenseNet-BC classifier built by visionkit (growth rate and compression options)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from visionkit.models.backbones.densenet import DENSENET_BLOCKS, densenet_bc_features
from visionkit.models.classification.backbone_head import inline_classifier
from visionkit.models.docstrings import (
    ACTIVATION_AND_WEIGHTS_ARGS,
    CLASSIFIER_SHAPES,
    fill_docstring,
)
from visionkit.models.registry import register

__all__ = ["densenet_bc"]


@register("densenet_bc", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES, activation_and_weights=ACTIVATION_AND_WEIGHTS_ARGS)
def densenet_bc(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    depth: int | None = 121,
    blocks: Sequence[int] | None = None,
    growth_rate: int = 32,
    compression: float = 0.5,
    dropout: float = 0.0,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "densenet_bc",
) -> keras.Model:
    """DenseNet-BC: dense blocks of bottleneck layers, compressing transitions.

    Huang et al. 2017, Table 1 and Section 3: every layer of a dense block receives the
    concatenated maps of all layers before it and adds k (the growth rate) of its own
    through BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) ("B"); transitions halve the maps
    (`compression` theta = 0.5, "C") and the resolution. DenseNet-BC-121 (the default:
    blocks 6, 12, 24, 16, k = 32) on 224x224x3 with 1000 classes has 7,978,856 learned
    parameters (the paper's 8.0M; torchvision's `densenet121`) plus 83,648 batch-norm
    moving statistics: `count_params()` 8,062,504, that of keras.applications'
    DenseNet121, which visionkit's `densenet121` wraps. Convolutions have no bias.

    Reference:
        - [Densely Connected Convolutional Networks](https://arxiv.org/abs/1608.06993)
          (Huang, Liu, van der Maaten & Weinberger, CVPR 2017)

    Args:
        input_shape: `(height, width, channels)` of raw 0..255 images, at least 32x32.
            Defaults to (224, 224, 3).
        num_classes: number of classes. Defaults to 1000.
        depth: 121, 169, 201 or 264 (Table 1), used when `blocks` is None.
            Defaults to 121.
        blocks: dense layers per block (four), instead of `depth`. Defaults to None.
        growth_rate: k. Defaults to 32.
        compression: theta in (0, 1]. Defaults to 0.5.
        dropout: dropout before the classifier. Defaults to 0.0.
        {activation_and_weights}
        backbone_weights: None or a local `.weights.h5` file saved from
            `build_backbone("densenet_bc", ...)` with the same options. Defaults to None.
        name: model name. Defaults to "densenet_bc".

    {shapes}

    Raises:
        ValueError: for an unknown depth, bad blocks, growth rate or compression, an input
            smaller than 32x32, a bad `activation`, or "imagenet".

    Example:

    >>> model = densenet_bc((32, 32, 3), 3, blocks=(1, 1, 1, 1), growth_rate=4)
    >>> model.get_layer("relu").output.shape
    (None, 1, 1, 8)
    """
    if blocks is None:
        if depth not in DENSENET_BLOCKS:
            raise ValueError(f"Expected depth in {sorted(DENSENET_BLOCKS)} (or blocks=...); "
                             f"received depth={depth!r}.")
        blocks = DENSENET_BLOCKS[depth]
    return inline_classifier(
        name, "densenet_bc", input_shape,
        lambda inputs: densenet_bc_features(inputs, blocks, growth_rate, compression),
        num_classes, activation, dropout, weights, backbone_weights, blocks=tuple(blocks),
        growth_rate=growth_rate, compression=compression)
