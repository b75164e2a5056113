"""AlexNet (single tower, or the original two towers) and ZFNet classifiers.

References:
    - [ImageNet Classification with Deep Convolutional Neural Networks](
      https://papers.nips.cc/paper/4824) (Krizhevsky, Sutskever & Hinton, NeurIPS 2012)
    - [One weird trick for parallelizing convolutional neural networks](
      https://arxiv.org/abs/1404.5997) (Krizhevsky, 2014): the single-tower variant
    - [Visualizing and Understanding Convolutional Networks](
      https://arxiv.org/abs/1311.2901) (Zeiler & Fergus, ECCV 2014; arXiv 2013)
"""

from __future__ import annotations

import math

import keras

from visionkit.models.backbones.blocks import scaled_width
from visionkit.models.classification.backbone_head import classifier
from visionkit.models.common import classifier_output, rescale
from visionkit.models.docstrings import CLASSIFIER_SHAPES, fill_docstring
from visionkit.models.layers.local_response_normalization import LocalResponseNormalization
from visionkit.models.registry import register

__all__ = ["alexnet", "zfnet", "ALEXNET_MIN_SIZE", "ZFNET_MIN_SIZE"]

# (filters, kernel, stride, padding, groups with towers=2) of conv1..conv5.
# Single tower: torchvision's alexnet / "one weird trick" (64, 192, 384, 256, 256).
_ALEXNET_ONE_TOWER = ((64, 11, 4, 2, 1), (192, 5, 1, 2, 1), (384, 3, 1, 1, 1),
                      (256, 3, 1, 1, 1), (256, 3, 1, 1, 1))
# Two towers (Krizhevsky et al. 2012, Fig. 2): conv2, conv4 and conv5 see only their
# own tower's half of the channels (groups=2); conv3 and the dense layers see both.
_ALEXNET_TWO_TOWERS = ((96, 11, 4, 2, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1),
                       (384, 3, 1, 1, 2), (256, 3, 1, 1, 2))
# Zeiler & Fergus 2013, Fig. 3: conv1 7x7/2 and conv2 5x5/2 instead of 11x11/4 and 5x5/1.
_ZFNET = ((96, 7, 2, 1, 1), (256, 5, 2, 0, 1), (384, 3, 1, 1, 1), (384, 3, 1, 1, 1),
          (256, 3, 1, 1, 1))
_POOL_AFTER = (1, 2, 5)
_FC_UNITS = 4096
# The Args AlexNet and ZFNet share besides the standard ones (see `fill_docstring`).
_CLASSIC_ARGS = """
width_multiplier: scales every convolution's filters. Defaults to 1.0.
fc_units: units of fc6 and fc7. Defaults to 4096.
dropout: dropout before fc6 and fc7. Defaults to 0.5.
"""
# Smallest input whose pool5 is still at least 1x1 (conv1, three 3x3/2 max pools).
ALEXNET_MIN_SIZE = 63
ZFNET_MIN_SIZE = 63


def _ceil_mode_pool(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """A 3x3 / stride-2 max pool with Caffe's rounding up (ZFNet's 110 -> 55 -> ...).

    Pads the bottom/right with zeros (inputs are post-ReLU, so zeros never win a window
    they would not have won) so that the output has `ceil((H - 3) / 2) + 1` rows.
    """
    pads = []
    for size in x.shape[1:3]:
        out = math.ceil((size - 3) / 2) + 1
        pads.append((0, max(0, (out - 1) * 2 + 3 - size)))
    if any(pad for _, pad in pads):
        x = keras.layers.ZeroPadding2D(tuple(pads), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


def _classic(inputs: keras.KerasTensor, table: tuple, num_classes: int,
             width_multiplier: float, fc_units: int, dropout: float, normalization: bool,
             ceil_mode: bool, activation: str | None) -> keras.KerasTensor:
    if int(fc_units) < 1:
        raise ValueError(f"Expected fc_units >= 1; received fc_units={fc_units!r}.")
    x = rescale(inputs)
    for index, (filters, kernel, stride, padding, groups) in enumerate(table, start=1):
        width = scaled_width(filters, width_multiplier)
        width += width % groups  # groups must divide the filters
        if padding:
            x = keras.layers.ZeroPadding2D(padding, name=f"conv{index}_pad")(x)
        x = keras.layers.Conv2D(width, kernel, strides=stride, groups=groups,
                                activation="relu", name=f"conv{index}")(x)
        if index in _POOL_AFTER:
            pool_name = f"pool{index}"
            x = (_ceil_mode_pool(x, pool_name) if ceil_mode
                 else keras.layers.MaxPooling2D(3, strides=2, name=pool_name)(x))
            if normalization and index < 5:
                x = LocalResponseNormalization(name=f"norm{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index in (6, 7):
        x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
        x = keras.layers.Dense(fc_units, activation="relu", name=f"fc{index}")(x)
    return classifier_output(x, num_classes, activation)


@register("alexnet", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES, classic_args=_CLASSIC_ARGS)
@classifier(minimum=ALEXNET_MIN_SIZE)
def alexnet(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
            towers: int = 1, width_multiplier: float = 1.0, fc_units: int = _FC_UNITS,
            dropout: float = 0.5) -> keras.KerasTensor:
    """AlexNet: five convolutions (11x11/4, 5x5, three 3x3), three max pools, three dense.

    `towers=1` (the default) is the single-tower network of Krizhevsky's "one weird
    trick" (2014), the one torchvision ships: 64, 192, 384, 256 and 256 filters, no
    normalisation. At 224x224x3 with 1000 classes it has 61,100,840 parameters
    (torchvision's `alexnet`). `towers=2` is the 2012 paper's network (Fig. 2): 96, 256,
    384, 384, 256 filters, conv2/4/5 grouped over the two GPUs' towers (`groups=2`),
    local response normalisation after pool1 and pool2 (Section 3.3); 60,965,224
    parameters at that size ("60 million", Section 1). conv1 pads by 2 so that a
    224x224 input gives the paper's 55x55 maps (the paper's 224 is really 227).
    Dropout 0.5 precedes fc6 and fc7 (Section 4.2).

    Args:
        {image_args}
        towers: 1 (single tower) or 2 (the original grouped towers). Defaults to 1.
        {classic_args}
        {output_args}

    {shapes}

    Raises:
        ValueError: for an input smaller than 63x63, `towers` not 1 or 2, a bad
            `activation` or `fc_units`, or "imagenet".

    Example:

    >>> model = alexnet((64, 64, 3), num_classes=3, width_multiplier=0.125, fc_units=16)
    >>> model.output_shape
    (None, 3)
    """
    if towers not in (1, 2):
        raise ValueError(f"Expected towers to be 1 or 2; received towers={towers!r}.")
    table = _ALEXNET_ONE_TOWER if towers == 1 else _ALEXNET_TWO_TOWERS
    return _classic(inputs, table, num_classes, width_multiplier, fc_units, dropout,
                    normalization=towers == 2, ceil_mode=False, activation=activation)


@register("zfnet", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES, classic_args=_CLASSIC_ARGS)
@classifier(minimum=ZFNET_MIN_SIZE)
def zfnet(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
          width_multiplier: float = 1.0, fc_units: int = _FC_UNITS,
          dropout: float = 0.5) -> keras.KerasTensor:
    """ZFNet: AlexNet with a 7x7/2 first layer and a 5x5/2 second layer, in one tower.

    Zeiler & Fergus (2013), Fig. 3: conv1 96 7x7/2, 3x3/2 max pool, contrast
    normalisation; conv2 256 5x5/2, pool, normalisation; conv3 384, conv4 384, conv5 256
    (3x3); pool; fc6, fc7 4096 with dropout. The map sizes of Fig. 3 (110, 55, 26, 13,
    13, 6 at 224x224) come from padding conv1 by 1 and pooling with Caffe's rounding up.
    Their "contrast normalisation" is AlexNet's local response normalisation here. At
    224x224x3 with 1000 classes the model has 62,357,608 parameters.

    Args:
        {image_args}
        {classic_args}
        {output_args}

    {shapes}

    Raises:
        ValueError: for an input smaller than 63x63, a bad `activation` or `fc_units`,
            or "imagenet".

    Example:

    >>> model = zfnet((64, 64, 3), num_classes=3, width_multiplier=0.125, fc_units=16)
    >>> [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool5")]
    [30, 15, 6, 1]
    """
    return _classic(inputs, _ZFNET, num_classes, width_multiplier, fc_units, dropout,
                    normalization=True, ceil_mode=True, activation=activation)
