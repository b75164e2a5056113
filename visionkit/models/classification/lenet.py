"""LeNet-5, adapted to colour images of any size from 28x28 (modern or paper layers)."""

from __future__ import annotations

import os

import keras

from visionkit.models.backbones.weights import check_weights, load_weights
from visionkit.models.classification.backbone_head import check_image_size
from visionkit.models.common import check_activation, classifier_output, raw_image_input, rescale
from visionkit.models.docstrings import (
    ACTIVATION_AND_WEIGHTS_ARGS,
    CLASSIFIER_SHAPES,
    fill_docstring,
)
from visionkit.models.registry import register

__all__ = ["lenet5"]

# The paper feeds 28x28 digits padded to 32x32 into C1, a 5x5 "valid" convolution; a
# "same" C1 on 28x28 is the same thing, and 28 is the smallest size for which C5's 5x5
# window still fits (28 -> 14 -> 10 -> 5 -> 1).
LENET_MIN_SIZE = 28


@register("lenet5", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES, activation_and_weights=ACTIVATION_AND_WEIGHTS_ARGS)
def lenet5(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    batch_norm: bool = True,
    name: str = "lenet5",
) -> keras.Model:
    """LeNet-5: C1 (6 5x5 convs), S2, C3 (16), S4, C5 (120), F6 (84), classifier.

    Adapted from the paper: colour (or grey) input of any size from 28x28 (C1 pads its
    input, as the paper pads 28x28 digits to 32x32), every C3 map sees all S2 maps (the
    paper's sparse connection table is dropped). Above 28x28, C5's map is larger than
    1x1: C5 is replicated over the input as the paper's space displacement neural
    network (section VII) replicates LeNet-5, and F6 reads each of its 120 maps' maximum
    over positions (at 28x28 the one position; F6 keeps the paper's 120 inputs and the
    model its parameter count at every size). Flattening C5's positions into F6 instead
    (the former adaptation) leaves the head to learn each object at each position: on
    64x64 `vk.data.shapes` (shapes anywhere in the image) it reached 0.524 validation
    accuracy after 10 epochs at `vk.train.fit`'s defaults, 0.561 with S4 pooled to the
    paper's 5x5 (a 1x1 C5), 0.571 with 4x the filters in C1 and C3 or with a 4x4 S2,
    0.344 with the average over positions; the maximum over positions reached 0.963.
    The output layer
    is a dense classifier rather than the paper's RBF units. By default the layers are
    the modern ones: batch norm (Ioffe & Szegedy 2015) after each convolution and after
    F6, ReLU instead of `tanh` and 2x2 max pooling instead of the paper's trainable
    average subsampling (the layers named c1, c3, c5 and f6 are then the activations).
    With batch norm but the paper's `tanh` and average pooling (and flattening), LeNet-5
    stayed at chance on 64x64 shapes for 10 epochs (training loss stuck at 1.69, above
    ln 5 = 1.61).
    `batch_norm=False` builds the paper's layers (`tanh`, average pooling, no batch norm).

    Reference:
        - [Gradient-Based Learning Applied to Document Recognition](
          http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf) (LeCun et al., Proc. IEEE 1998)

    Args:
        input_shape: `(height, width, channels)` of raw 0..255 images, at least 28x28.
            Defaults to (32, 32, 3).
        num_classes: number of classes. Defaults to 10.
        {activation_and_weights}
        batch_norm: the modern layers (batch norm, ReLU, max pooling); False for the
            paper's (`tanh`, average pooling). Defaults to True.
        name: model name. Defaults to "lenet5".

    {shapes}

    Raises:
        ValueError: for an input smaller than 28x28, a bad `activation`, or "imagenet".

    Example:

    >>> model = lenet5((28, 28, 3), num_classes=10)
    >>> model.get_layer("c5").output.shape
    (None, 1, 1, 120)
    >>> lenet5((64, 64, 3), num_classes=5).get_layer("c5").output.shape
    (None, 10, 10, 120)
    """
    check_activation(activation)
    check_weights(weights)
    shape = check_image_size(name, input_shape, LENET_MIN_SIZE)
    inputs = raw_image_input(shape)
    x = rescale(inputs)
    pooling = keras.layers.MaxPooling2D if batch_norm else keras.layers.AveragePooling2D
    x = _convolution(x, 6, "c1", batch_norm, padding="same")
    x = pooling(2, name="s2")(x)
    x = _convolution(x, 16, "c3", batch_norm)
    x = pooling(2, name="s4")(x)
    x = _convolution(x, 120, "c5", batch_norm)
    # C5 replicated over a larger input (the paper's space displacement network): each
    # position sees one 5x5 window of S4; F6 reads each map's maximum over positions.
    x = keras.layers.GlobalMaxPooling2D(name="c5_max")(x)
    if batch_norm:
        x = keras.layers.Dense(84, use_bias=False, name="f6_dense")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name="f6_bn")(x)
        x = keras.layers.ReLU(name="f6")(x)
    else:
        x = keras.layers.Dense(84, activation="tanh", name="f6")(x)
    outputs = classifier_output(x, num_classes, activation)
    return load_weights(keras.Model(inputs, outputs, name=name), weights)


def _convolution(x: keras.KerasTensor, filters: int, name: str, batch_norm: bool,
                 padding: str = "valid") -> keras.KerasTensor:
    """A 5x5 convolution named `name`: with `batch_norm`, convolution, batch norm and
    ReLU; otherwise the paper's convolution and `tanh`."""
    if not batch_norm:
        return keras.layers.Conv2D(filters, 5, padding=padding, activation="tanh",
                                   name=name)(x)
    x = keras.layers.Conv2D(filters, 5, padding=padding, use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=name)(x)
