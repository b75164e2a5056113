"""VGG-11 and VGG-16 classifiers."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

from visionkit.models.backbones.factory import BACKBONE_MIN_SIZE
from visionkit.models.backbones.vgg import vgg_features
from visionkit.models.classification.backbone_head import own_classifier
from visionkit.models.common import classifier_output
from visionkit.models.docstrings import (
    ACTIVATION_AND_WEIGHTS_ARGS,
    CLASSIFIER_SHAPES,
    fill_docstring,
)
from visionkit.models.registry import register
from visionkit.models.variants import variant

__all__ = ["vgg11", "vgg16"]


def _vgg(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    fc_units: int = 4096,
    dropout: float = 0.5,
    batch_norm: bool = False,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    backbone_weights: str | os.PathLike | None = None,
    name: str = "vgg",
    *,
    depth: int,
) -> keras.Model:
    """The builder `vgg11` and `vgg16` are variants of (`variant`)."""
    if int(fc_units) < 1:
        raise ValueError(f"Expected fc_units >= 1; received fc_units={fc_units!r}.")

    def wire(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
             width_multiplier: float) -> keras.KerasTensor:
        features = vgg_features(inputs, depth, width_multiplier, batch_norm)
        x = keras.layers.Flatten(name="flatten")(features["P5"])
        for index in (1, 2):
            x = keras.layers.Dense(fc_units, activation="relu", name=f"fc{index}")(x)
            x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
        return classifier_output(x, num_classes, activation)

    return own_classifier(wire, BACKBONE_MIN_SIZE, input_shape, num_classes, activation,
                          weights, name, width_multiplier=width_multiplier,
                          backbone=(f"vgg{depth}", backbone_weights,
                                    {"width_multiplier": width_multiplier,
                                     "batch_norm": batch_norm}))


# The Args both builders share (see `fill_docstring`).
_ARGS = """
input_shape: `(height, width, channels)` of raw 0..255 images, at least 32x32.
    Defaults to (224, 224, 3).
num_classes: number of classes. Defaults to 1000.
width_multiplier: scales the convolutions' filters. Defaults to 1.0.
fc_units: units of each of the two hidden dense layers. Defaults to 4096.
dropout: dropout after each hidden dense layer. Defaults to 0.5.
batch_norm: batch norm after every convolution (VGG-BN). Defaults to False.
""" + ACTIVATION_AND_WEIGHTS_ARGS + """\
backbone_weights: None or a local `.weights.h5` file saved from
    `build_backbone("{name}", ...)` with the same input shape and options.
    Defaults to None.
name: model name. Defaults to "{name}".
"""


# Each variant's docstring: the family's text with its depth and parameter count.
_DOC = """VGG-{depth}: {convolutions} 3x3 convolutions in five max-pooled stages, then two dense layers.

    The trunk is the `{name}` backbone's (`visionkit.models.backbones`), wired inline
    so the model is one flat graph; then Flatten, two ReLU dense layers of `fc_units`
    with dropout, and the classifier. At 224x224x3 with 1000 classes and the defaults the
    model has {parameters}.

    Reference:
        - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
          https://arxiv.org/abs/1409.1556) (Simonyan & Zisserman, ICLR 2015)

    Args:
        {args}

    {shapes}

    Raises:
        ValueError: for an input smaller than 32x32, a bad `activation`, or "imagenet".

    Example:

    >>> model = {name}((32, 32, 3), num_classes=3, width_multiplier=0.125, fc_units=16)
    >>> model.output_shape
    (None, 3)
    """


def _variant(depth: int, convolutions: int, parameters: str) -> Callable[..., keras.Model]:
    builder = variant(_vgg, f"vgg{depth}", _DOC, depth=depth,
                      doc_fields={"convolutions": convolutions, "parameters": parameters})
    builder = fill_docstring(args=_ARGS, shapes=CLASSIFIER_SHAPES)(builder)
    return register(f"vgg{depth}", task="classification")(builder)


vgg11 = _variant(11, 8, "132,863,336 parameters (the paper's 133 million)")
vgg16 = _variant(16, 13, """138,357,544 parameters (the paper's 138 million; keras.applications'
    VGG16 count)""")
