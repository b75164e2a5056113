"""A small VGG-style convolutional network for small images."""

from __future__ import annotations

import keras

from visionkit.models.common import classifier_output, raw_image_input, rescale
from visionkit.models.registry import register

__all__ = ["simple_cnn"]


@register("simple_cnn", task="classification")
def simple_cnn(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    filters: tuple[int, ...] = (32, 64, 128),
    dropout: float = 0.25,
    activation: str | None = "softmax",
    name: str = "simple_cnn",
) -> keras.Model:
    """A small convolutional classifier: (conv-bn-relu, max-pool) blocks, then a dense head.

    Each entry of `filters` adds one block of a 3x3 convolution, batch norm, ReLU and 2x2
    max pooling; the last block is global-average-pooled into the classifier.

    Args:
        input_shape: `(height, width, channels)` of raw 0..255 images. Defaults to (32, 32, 3).
        num_classes: number of classes. Defaults to 10.
        filters: filters per block. Defaults to (32, 64, 128).
        dropout: dropout before the classifier. Defaults to 0.25.
        activation: final activation, "softmax" or None for logits. Defaults to "softmax".
        name: model name.

    Returns:
        A `keras.Model` from images `[B,H,W,C]` to class scores `[B, num_classes]`.

    Example:

    >>> model = simple_cnn((28, 28, 1), num_classes=3, filters=(8, 16))
    >>> model.output_shape
    (None, 3)
    """
    if not filters:
        raise ValueError("Expected at least one entry in filters; received an empty tuple.")
    inputs = raw_image_input(input_shape)
    x = rescale(inputs)
    for index, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(count, 3, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier_output(x, num_classes, activation, dropout)
    return keras.Model(inputs, outputs, name=name)
