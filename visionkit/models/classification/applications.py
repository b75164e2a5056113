"""Classifiers on keras.applications backbones: backbone -> pool -> dropout -> dense.

Each builder is the usual transfer-learning model (`weights="imagenet"` gives it an
ImageNet backbone under a new head): the backbone from
`visionkit.models.backbones.build_backbone` as a nested model named
`"{family}_backbone"` (freeze it with `model.get_layer("{family}_backbone").trainable =
False`), global average pooling of its `P5` map, dropout and the dense "predictions"
layer. Each backbone applies its family's preprocessing to raw 0..255 pixels.
"""

from __future__ import annotations

import os

import keras

from visionkit.models.classification.backbone_head import application_classifier
from visionkit.models.docstrings import fill_docstring
from visionkit.models.registry import register

__all__ = [
    "densenet121",
    "efficientnet_b0",
    "efficientnet_b1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet50_v2",
]

# keras.applications' top dropout for EfficientNet-B0; used for every family here.
_HEAD_DROPOUT = 0.2


# The Args, shapes and Raises every builder here shares (see `fill_docstring`).
_IMAGE_ARGS = """
input_shape: `(height, width, 3)` of raw 0..255 RGB images, at least 32x32.
    Defaults to (224, 224, 3).
num_classes: number of classes. Defaults to 1000.
"""

_HEAD_ARGS = """
dropout: dropout before the classifier. Defaults to 0.2.
activation: final activation, "softmax" or None for logits. Defaults to "softmax".
weights: None, a local `.weights.h5` file for the whole model, or "imagenet"
    (the same as `backbone_weights="imagenet"`: a pretrained backbone under a new
    head). Defaults to None.
backbone_weights: None, "imagenet" (the file Keras publishes, fetched once into
    Keras's cache; see `visionkit weights`), or a local backbone weights file: a
    `.weights.h5` file saved from `build_backbone("{name}", ...)`, or a no-top
    `.h5` file of this family. Defaults to None.
name: model name. Defaults to "{name}".
"""

_SHAPES_AND_RAISES = """
Input shape:
    `[B, H, W, 3]` raw pixels 0..255.

Output shape:
    `[B, num_classes]`.

Returns:
    A `keras.Model` with the nested backbone model `"{name}_backbone"`.

Raises:
    ValueError: for an input smaller than 32x32 or not RGB, a bad `activation`, or
        weights that do not fit (see `build_backbone`).
    WeightsUnavailableError: when "imagenet" weights are neither cached nor fetchable.
"""


@register("mobilenet_v2", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def mobilenet_v2(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "mobilenet_v2",
) -> keras.Model:
    """MobileNetV2 (keras.applications): inverted residual blocks with linear bottlenecks.

    The `mobilenet_v2` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels to -1..1 (the family's "tf" preprocessing).

    Reference:
        - [MobileNetV2: Inverted Residuals and Linear Bottlenecks](
          https://arxiv.org/abs/1801.04381) (Sandler et al., CVPR 2018)

    Args:
        {image_args}
        width_multiplier: MobileNet's width multiplier `alpha`. Defaults to 1.0.
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = mobilenet_v2((32, 32, 3), num_classes=3, width_multiplier=0.35)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("mobilenet_v2", input_shape, num_classes, width_multiplier,
                                  dropout, activation, weights, backbone_weights, name)


@register("mobilenet_v3_small", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def mobilenet_v3_small(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "mobilenet_v3_small",
) -> keras.Model:
    """MobileNetV3-Small (keras.applications): searched blocks with squeeze-excite and hard-swish.

    The `mobilenet_v3_small` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels with MobileNetV3's own rescaling layer.

    Reference:
        - [Searching for MobileNetV3](
          https://arxiv.org/abs/1905.02244) (Howard et al., ICCV 2019)

    Args:
        {image_args}
        width_multiplier: MobileNet's width multiplier `alpha`. Defaults to 1.0.
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = mobilenet_v3_small((32, 32, 3), num_classes=3, width_multiplier=0.35)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("mobilenet_v3_small", input_shape, num_classes, width_multiplier,
                                  dropout, activation, weights, backbone_weights, name)


@register("mobilenet_v3_large", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def mobilenet_v3_large(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "mobilenet_v3_large",
) -> keras.Model:
    """MobileNetV3-Large (keras.applications): searched blocks with squeeze-excite and hard-swish.

    The `mobilenet_v3_large` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels with MobileNetV3's own rescaling layer.

    Reference:
        - [Searching for MobileNetV3](
          https://arxiv.org/abs/1905.02244) (Howard et al., ICCV 2019)

    Args:
        {image_args}
        width_multiplier: MobileNet's width multiplier `alpha`. Defaults to 1.0.
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = mobilenet_v3_large((32, 32, 3), num_classes=3, width_multiplier=0.35)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("mobilenet_v3_large", input_shape, num_classes, width_multiplier,
                                  dropout, activation, weights, backbone_weights, name)


@register("efficientnet_b0", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def efficientnet_b0(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "efficientnet_b0",
) -> keras.Model:
    """EfficientNet-B0 (keras.applications): MBConv blocks found by architecture search.

    The `efficientnet_b0` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels with EfficientNet's own rescaling and
    normalization layers.

    Reference:
        - [EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks](
          https://arxiv.org/abs/1905.11946) (Tan & Le, ICML 2019)

    Args:
        {image_args}
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = efficientnet_b0((32, 32, 3), num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("efficientnet_b0", input_shape, num_classes, None,
                                  dropout, activation, weights, backbone_weights, name)


@register("efficientnet_b1", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def efficientnet_b1(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "efficientnet_b1",
) -> keras.Model:
    """EfficientNet-B1 (keras.applications): B0 compound-scaled (depth x1.1, resolution 240).

    The `efficientnet_b1` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels with EfficientNet's own rescaling and
    normalization layers.

    Reference:
        - [EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks](
          https://arxiv.org/abs/1905.11946) (Tan & Le, ICML 2019)

    Args:
        {image_args}
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = efficientnet_b1((32, 32, 3), num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("efficientnet_b1", input_shape, num_classes, None,
                                  dropout, activation, weights, backbone_weights, name)


@register("densenet121", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def densenet121(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "densenet121",
) -> keras.Model:
    """DenseNet-121 (keras.applications): dense blocks where every layer sees all earlier maps.

    The `densenet121` backbone, global average pooling, dropout and the dense classifier.
    The backbone normalizes raw pixels with ImageNet's mean and standard deviation
    (the family's "torch" preprocessing).

    Reference:
        - [Densely Connected Convolutional Networks](
          https://arxiv.org/abs/1608.06993) (Huang et al., CVPR 2017)

    Args:
        {image_args}
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = densenet121((32, 32, 3), num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("densenet121", input_shape, num_classes, None,
                                  dropout, activation, weights, backbone_weights, name)


@register("resnet50_v2", task="classification")
@fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                shapes_and_raises=_SHAPES_AND_RAISES)
def resnet50_v2(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "resnet50_v2",
) -> keras.Model:
    """ResNet50V2 (keras.applications): pre-activation bottleneck residual blocks.

    The `resnet50_v2` backbone, global average pooling, dropout and the dense classifier.
    The backbone scales raw pixels to -1..1 (the family's "tf" preprocessing).

    Reference:
        - [Identity Mappings in Deep Residual Networks](
          https://arxiv.org/abs/1603.05027) (He et al., ECCV 2016)

    Args:
        {image_args}
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = resnet50_v2((32, 32, 3), num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    return application_classifier("resnet50_v2", input_shape, num_classes, None,
                                  dropout, activation, weights, backbone_weights, name)
