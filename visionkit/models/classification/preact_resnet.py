"""Pre-activation ResNet-18/34/50 and Wide ResNet (WRN-d-k) classifiers."""

from __future__ import annotations

import os

import keras

from visionkit.models.backbones.preact_resnet import preact_resnet_features, wide_resnet_features
from visionkit.models.classification.backbone_head import classifier, inline_classifier
from visionkit.models.common import classifier_output
from visionkit.models.docstrings import (
    ACTIVATION_AND_WEIGHTS_ARGS,
    CLASSIFIER_SHAPES,
    fill_docstring,
)
from visionkit.models.registry import register

__all__ = ["preact_resnet18", "preact_resnet34", "preact_resnet50", "wide_resnet"]

# Two stride-2 groups: an 8x8 input still ends at 2x2.
WIDE_RESNET_MIN_SIZE = 8


def _preact(depth: int, input_shape: tuple, num_classes: int, width_multiplier: float,
            dropout: float, attention: str | None, stochastic_depth: float,
            activation: str | None, weights, backbone_weights, name: str) -> keras.Model:
    return inline_classifier(
        name, f"preact_resnet{depth}", input_shape,
        lambda inputs: preact_resnet_features(inputs, depth, width_multiplier, attention,
                                              stochastic_depth),
        num_classes, activation, dropout, weights, backbone_weights,
        width_multiplier=width_multiplier, attention=attention,
        stochastic_depth=stochastic_depth)


_PREACT_DOC = """Pre-activation ResNet-{depth}: {blocks} residual units, BN-ReLU before each convolution.

    He et al. 2016 ("Identity Mappings in Deep Residual Networks", Fig. 4e): each
    unit is BN-ReLU-conv, twice ({kind}), added to an identity shortcut (a 1x1
    convolution of the pre-activated input where the shape changes), with no ReLU
    after the sum; a final BN-ReLU before global average pooling. The stem and block
    counts are ResNet-{depth}'s (He et al. 2015, Table 1). The trunk is the
    `preact_resnet{depth}` backbone's, wired inline.

    Reference:
        - [Identity Mappings in Deep Residual Networks](https://arxiv.org/abs/1603.05027)
          (He, Zhang, Ren & Sun, ECCV 2016)

    Args:
        input_shape: `(height, width, channels)` of raw 0..255 images, at least 32x32.
            Defaults to (224, 224, 3).
        num_classes: number of classes. Defaults to 1000.
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        dropout: dropout before the classifier. Defaults to 0.0.
        attention: None, "se", "cbam" (on every residual branch) or "non_local" (one
            block after conv4_x). Defaults to None.
        stochastic_depth: drop probability of the last unit (1 - p_L), decaying
            linearly to 0 at the first (Huang et al. 2016). Defaults to 0.0.
        {activation_and_weights}
        backbone_weights: None or a local `.weights.h5` file saved from
            `build_backbone("preact_resnet{depth}", ...)` with the same options.
            Defaults to None.
        name: model name. Defaults to "preact_resnet{depth}".

    {shapes}

    Raises:
        ValueError: for an input smaller than 32x32, a bad `activation`, `attention` or
            `stochastic_depth`, or "imagenet".

    Example:

    >>> model = preact_resnet{depth}((32, 32, 3), num_classes=3, width_multiplier=0.125)
    >>> model.output_shape
    (None, 3)
    """


def _preact_builder(depth: int, kind: str, blocks: int):
    def builder(
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        width_multiplier: float = 1.0,
        dropout: float = 0.0,
        attention: str | None = None,
        stochastic_depth: float = 0.0,
        activation: str | None = "softmax",
        weights: str | os.PathLike | None = None,
        backbone_weights: str | os.PathLike | None = None,
        name: str = f"preact_resnet{depth}",
    ) -> keras.Model:
        return _preact(depth, input_shape, num_classes, width_multiplier, dropout, attention,
                       stochastic_depth, activation, weights, backbone_weights, name)

    builder.__name__ = builder.__qualname__ = f"preact_resnet{depth}"
    builder.__doc__ = _PREACT_DOC.format(depth=depth, kind=kind, blocks=blocks,
                                         shapes="{shapes}",
                                         activation_and_weights="{activation_and_weights}")
    builder = fill_docstring(shapes=CLASSIFIER_SHAPES,
                             activation_and_weights=ACTIVATION_AND_WEIGHTS_ARGS)(builder)
    return register(f"preact_resnet{depth}", task="classification")(builder)


preact_resnet18 = _preact_builder(18, "3x3 and 3x3", 8)
preact_resnet34 = _preact_builder(34, "3x3 and 3x3", 16)
preact_resnet50 = _preact_builder(50, "thrice: 1x1, 3x3, 1x1 to 4x the filters", 16)


@register("wide_resnet", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES)
@classifier(minimum=WIDE_RESNET_MIN_SIZE, input_shape=(32, 32, 3), num_classes=10)
def wide_resnet(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
                depth: int = 28, widen_factor: float = 10, dropout: float = 0.0,
                attention: str | None = None, stochastic_depth: float = 0.0
                ) -> keras.KerasTensor:
    """Wide ResNet WRN-d-k: a CIFAR pre-activation ResNet with k times wider groups.

    Zagoruyko & Komodakis 2016, Table 1: a 3x3 convolution of 16 filters, three groups
    of (d - 4) / 6 basic pre-activation blocks with 16k, 32k and 64k filters (the last
    two start with stride 2), BN-ReLU, global average pooling and the classifier; the
    paper's `dropout` (0.3 in Table 6) sits between a block's two convolutions.
    Convolutions have no bias. WRN-28-10 on 32x32x3 with 10 classes has 36,479,194
    learned parameters (the paper's 36.5M, Table 4) plus 17,952 batch-norm moving
    statistics (`count_params()` 36,497,146). Wide ResNet has three stages at strides
    1, 2 and 4, so it is a classifier only (no P1..P5 backbone).

    Reference:
        - [Wide Residual Networks](https://arxiv.org/abs/1605.07146)
          (Zagoruyko & Komodakis, BMVC 2016)

    Args:
        {image_args}
        depth: d, total depth; (d - 4) must be a multiple of 6. Defaults to 28.
        widen_factor: k, the width multiplier of the groups. Defaults to 10.
        dropout: dropout between the convolutions of each block. Defaults to 0.0.
        attention: None, "se", "cbam" or "non_local" (one block after the last group).
            Defaults to None.
        stochastic_depth: drop probability of the last block. Defaults to 0.0.
        {output_args}

    {shapes}

    Raises:
        ValueError: for a bad depth, widen factor, `activation`, `attention` or
            `stochastic_depth`, an input smaller than 8x8, or "imagenet".

    Example:

    >>> model = wide_resnet((32, 32, 3), num_classes=10, depth=10, widen_factor=1)
    >>> model.get_layer("post_relu").output.shape
    (None, 8, 8, 64)
    """
    x = wide_resnet_features(inputs, depth, widen_factor, dropout, attention, stochastic_depth)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return classifier_output(x, num_classes, activation)
