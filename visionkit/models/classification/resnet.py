"""ResNet-18, ResNet-34 and ResNet-50 classifiers."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

from visionkit.models.backbones.resnet import resnet_features
from visionkit.models.classification.backbone_head import inline_classifier
from visionkit.models.docstrings import (
    ACTIVATION_AND_WEIGHTS_ARGS,
    CLASSIFIER_SHAPES,
    fill_docstring,
)
from visionkit.models.registry import register
from visionkit.models.variants import variant

__all__ = ["resnet18", "resnet34", "resnet50", "default_stem", "DEEP_STEM_BELOW"]

# Inputs whose shorter side is below this many pixels get the deep stem by default.
DEEP_STEM_BELOW = 128


def default_stem(input_shape: tuple[int | None, ...]) -> str:
    """ResNet's stem sized to the input: "deep" (ResNet-C) when the shorter known side
    is below `DEEP_STEM_BELOW` (128) pixels, else the paper's "standard" 7x7 convolution.

    The paper's stem was designed for 224x224 ImageNet crops; on 64x64 images ResNet-18
    with it stayed at chance on the training split for 5 of fit's 10 default epochs
    (0.744 validation accuracy after 10 on `vk.data.shapes`), with the deep stem 0.888
    (0.905 with fit's PreciseBN).
    An input of unknown size gets "standard".

    Example:

    >>> default_stem((64, 64, 3)), default_stem((224, 224, 3)), default_stem((None, None, 3))
    ('deep', 'standard', 'standard')
    """
    known = [int(size) for size in tuple(input_shape)[:2] if size is not None]
    return "deep" if known and min(known) < DEEP_STEM_BELOW else "standard"


def _resnet(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = 0.0,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "resnet",
    attention: str | None = None,
    stochastic_depth: float = 0.0,
    stem_pool: bool = True,
    zero_init_residual: bool = False,
    stem: str | None = None,
    *,
    depth: int,
) -> keras.Model:
    """The builder `resnet18`, `resnet34` and `resnet50` are variants of (`variant`)."""
    chosen = stem
    if stem is None:
        stem = "standard" if backbone_weights is not None else default_stem(input_shape)
    try:
        return inline_classifier(
            name, f"resnet{depth}", input_shape,
            lambda inputs: resnet_features(inputs, depth, width_multiplier, attention,
                                           stochastic_depth, stem_pool=bool(stem_pool),
                                           zero_init_residual=bool(zero_init_residual),
                                           stem=stem),
            num_classes, activation, dropout, weights, backbone_weights,
            width_multiplier=width_multiplier, attention=attention,
            stochastic_depth=stochastic_depth)
    except ValueError as error:
        if chosen is not None or stem != "deep" or weights is None or \
                "does not fit" not in str(error):
            raise
        # Files saved before the deep stem became the default below 128 pixels hold the
        # paper's 7x7 stem: say which option builds the model they were saved from.
        raise ValueError(f"{error} The stem defaults to 'deep' (three 3x3 convolutions) "
                         f"for inputs below {DEEP_STEM_BELOW} pixels; a file saved from a "
                         f"model with the paper's 7x7 stem (visionkit's default at every "
                         f"size before) loads with stem='standard'.") from error


# The Args and Raises the three builders share (see `fill_docstring`).
_ARGS = """
input_shape: `(height, width, channels)` of raw 0..255 images, at least 32x32.
    Defaults to (224, 224, 3).
num_classes: number of classes. Defaults to 1000.
width_multiplier: scales every convolution's filters. Defaults to 1.0.
dropout: dropout before the classifier (the paper has none). Defaults to 0.0.
""" + ACTIVATION_AND_WEIGHTS_ARGS + """\
backbone_weights: None or a local `.weights.h5` file saved from
    `build_backbone("{name}", ...)` with the same input shape and width.
    Defaults to None.
name: model name. Defaults to "{name}".
attention: None, "se", "cbam" (on every residual branch) or "non_local" (one
    block after conv4_x); see `resnet_features`. Defaults to None.
stochastic_depth: drop probability of the last block (1 - p_L), decaying
    linearly to 0 at the first (Huang et al. 2016). Defaults to 0.0.
stem_pool: the stem's 3x3 stride-2 max pool; False leaves it out, so the last
    stage's map is 1/16 of the input rather than 1/32 (4x4 rather than 2x2 at
    64x64, at four times the compute; the CIFAR ResNets of the paper have no
    pool). Defaults to True.
zero_init_residual: start the last batch norm of each residual branch with
    gamma = 0, so every block starts as its shortcut (Goyal et al. 2017, section
    5.1; torchvision's `zero_init_residual`, timm's `zero_init_last`). The
    parameter count does not depend on it. Defaults to False (the paper's
    gamma = 1): on `vk.data.shapes` (64x64) ResNet-18 with gamma = 0 stayed
    at chance on the training split for its first 3 epochs, at fit's default
    Adam 3e-3 and at 1e-3; the network it starts as (the stem and the 1x1
    projection shortcuts) sees 11x11 pixels, less than a shape.
stem: conv1 as "standard" (the paper's 7x7 stride-2 convolution), "deep"
    (ResNet-C, He et al. 2019, section 4.1: three 3x3 convolutions, 32, 32 and 64
    filters, the first with stride 2; see `resnet_features`), or None to size it to
    the input (`default_stem`: "deep" below 128 pixels, the paper's "standard" from
    128 on, and "standard" with `backbone_weights`, which `build_backbone` saves with
    the standard stem). Defaults to None. On `vk.data.shapes` (2,048 images, 64x64)
    at fit's defaults ResNet-18 reached validation accuracy 0.905 after 10 epochs with
    "deep" (training 0.903; one thread; 0.832 at two, where the sums run in another
    order) and 0.744 with "standard" (training 0.750, at chance for its first 5
    epochs).
"""

_RAISES = """
Raises:
    ValueError: for an input smaller than 32x32, a bad `activation`, `attention`,
        `stochastic_depth` or `stem`, or "imagenet".
"""


# Each variant's docstring: the family's text with its depth and blocks.
_DOC = """ResNet-{depth}: {summary}

    {details}

    References:
        - [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385)
          (He et al., CVPR 2016)
        - [Accurate, Large Minibatch SGD](https://arxiv.org/abs/1706.02677) (Goyal et
          al. 2017), section 5.1: `zero_init_residual`
        - [Bag of Tricks for Image Classification](https://arxiv.org/abs/1812.01187) (He
          et al. 2019), section 4.1: `stem="deep"`

    Args:
        {args}

    {shapes}

    {raises}

    Example:

    >>> model = {name}((32, 32, 3), num_classes=3, width_multiplier=0.125)
    >>> model.output_shape
    (None, 3)
    """


def _variant(depth: int, summary: str, details: str) -> Callable[..., keras.Model]:
    builder = variant(_resnet, f"resnet{depth}", _DOC, depth=depth,
                      doc_fields={"summary": summary, "details": details})
    builder = fill_docstring(args=_ARGS, shapes=CLASSIFIER_SHAPES, raises=_RAISES)(builder)
    return register(f"resnet{depth}", task="classification")(builder)


resnet18 = _variant(18, "eight basic residual blocks (two 3x3 convolutions each).", """\
The trunk is the `resnet18` backbone's (`visionkit.models.backbones`), wired inline so
    the model is one flat graph: a 7x7 stride-2 stem (three 3x3 convolutions below 128
    pixels, see `stem`) and 3x3 max pool (optional, see `stem_pool`), four stages of
    [2, 2, 2, 2] blocks with projection shortcuts where the shape changes, batch norm
    after every convolution, He-normal initialisation; then global average pooling and
    the classifier.""")
resnet34 = _variant(34, "sixteen basic residual blocks (two 3x3 convolutions each).",
                    "As `resnet18`, with [3, 4, 6, 3] blocks per stage.")
resnet50 = _variant(50, "sixteen bottleneck residual blocks (1x1 reduce, 3x3, 1x1 expand by 4).",
                    """\
As `resnet18`, with bottleneck blocks, [3, 4, 6, 3] per stage. Convolutions keep
    their biases before batch norm, as keras.applications' ResNet50 does, so at
    224x224x3 with 1000 classes the model has exactly its 25,636,712 parameters. The
    stride of a downsampling block sits on its 3x3 convolution ("ResNet v1.5"); the
    parameter count does not depend on it.""")
