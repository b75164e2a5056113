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
from collections.abc import Callable

import keras

from visionkit.models.backbones.applications import APPLICATION_FAMILIES
from visionkit.models.classification.backbone_head import application_classifier
from visionkit.models.docstrings import fill_docstring
from visionkit.models.registry import register
from visionkit.models.variants import variant

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



def _application(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = _HEAD_DROPOUT,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "application",
    *,
    family: str,
) -> keras.Model:
    """The builder every classifier here is a variant of (`variant`); families without a
    width multiplier fix `width_multiplier=None`."""
    return application_classifier(family, input_shape, num_classes, width_multiplier,
                                  dropout, activation, weights, backbone_weights, name)


# Each builder's docstring: the family's title, preprocessing and paper.
_DOC = """{title}

    The `{name}` backbone, global average pooling, dropout and the dense classifier.
    The backbone {preprocessing}

    Reference:
        - [{paper}](
          {url}) ({authors})

    Args:
        {image_args}
        {width_arg}
        {head_args}

    {shapes_and_raises}

    Example:

    >>> model = {name}((32, 32, 3), num_classes=3{width_example})
    >>> model.output_shape
    (None, 3)
    """

_WIDTH_ARG = "width_multiplier: MobileNet's width multiplier `alpha`. Defaults to 1.0."


def _classifier(family: str, title: str, preprocessing: str, paper: str, url: str,
                authors: str) -> Callable[..., keras.Model]:
    width = APPLICATION_FAMILIES[family].width_argument
    builder = variant(
        _application, family, _DOC, family=family, **({} if width else {"width_multiplier": None}),
        doc_fields={"title": title, "preprocessing": preprocessing, "paper": paper, "url": url,
                    "authors": authors, "width_example": ", width_multiplier=0.35" if width else ""})
    builder = fill_docstring(image_args=_IMAGE_ARGS, head_args=_HEAD_ARGS,
                             width_arg=_WIDTH_ARG if width else "",
                             shapes_and_raises=_SHAPES_AND_RAISES)(builder)
    return register(family, task="classification")(builder)


_TF_PREPROCESSING = """scales raw pixels to -1..1 (the family's "tf" preprocessing)."""
_MOBILENET_V3 = ("searched blocks with squeeze-excite and hard-swish.",
                 "scales raw pixels with MobileNetV3's own rescaling layer.",
                 "Searching for MobileNetV3", "https://arxiv.org/abs/1905.02244",
                 "Howard et al., ICCV 2019")
_EFFICIENTNET = ("""scales raw pixels with EfficientNet's own rescaling and
    normalization layers.""", "EfficientNet: Rethinking Model Scaling for Convolutional Neural "
                 "Networks", "https://arxiv.org/abs/1905.11946", "Tan & Le, ICML 2019")

mobilenet_v2 = _classifier(
    "mobilenet_v2", "MobileNetV2 (keras.applications): inverted residual blocks with linear "
    "bottlenecks.", _TF_PREPROCESSING, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    "https://arxiv.org/abs/1801.04381", "Sandler et al., CVPR 2018")
mobilenet_v3_small = _classifier(
    "mobilenet_v3_small", f"MobileNetV3-Small (keras.applications): {_MOBILENET_V3[0]}",
    *_MOBILENET_V3[1:])
mobilenet_v3_large = _classifier(
    "mobilenet_v3_large", f"MobileNetV3-Large (keras.applications): {_MOBILENET_V3[0]}",
    *_MOBILENET_V3[1:])
efficientnet_b0 = _classifier(
    "efficientnet_b0", "EfficientNet-B0 (keras.applications): MBConv blocks found by "
    "architecture search.", *_EFFICIENTNET)
efficientnet_b1 = _classifier(
    "efficientnet_b1", "EfficientNet-B1 (keras.applications): B0 compound-scaled (depth x1.1, "
    "resolution 240).", *_EFFICIENTNET)
densenet121 = _classifier(
    "densenet121", "DenseNet-121 (keras.applications): dense blocks where every layer sees all "
    "earlier maps.", """normalizes raw pixels with ImageNet's mean and standard deviation
    (the family's "torch" preprocessing).""", "Densely Connected Convolutional Networks",
    "https://arxiv.org/abs/1608.06993", "Huang et al., CVPR 2017")
resnet50_v2 = _classifier(
    "resnet50_v2", "ResNet50V2 (keras.applications): pre-activation bottleneck residual blocks.",
    _TF_PREPROCESSING, "Identity Mappings in Deep Residual Networks",
    "https://arxiv.org/abs/1603.05027", "He et al., ECCV 2016")
