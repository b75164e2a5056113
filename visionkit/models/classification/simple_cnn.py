"""A small VGG-style convolutional network for small images."""

from __future__ import annotations

import keras

from visionkit.models.common import classifier_output, raw_image_input, rescale
from visionkit.models.registry import register

__all__ = ["simple_cnn", "default_filters", "receptive_field"]

# Filters of the first block; each further block doubles them, up to MAX_FILTERS.
FIRST_FILTERS = 32
MAX_FILTERS = 256


def receptive_field(blocks: int) -> int:
    """Receptive field in pixels of `blocks` (3x3 conv, 2x2 max pool) blocks.

    Each block adds `2 * jump` (the convolution) and `jump` (the pooling) to the field,
    then doubles the jump: 4, 10, 22, 46, 94, ... pixels.
    """
    field, jump = 1, 1
    for _ in range(int(blocks)):
        field += 2 * jump + jump
        jump *= 2
    return field


def default_filters(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Filters per block sized to the input: enough blocks for the receptive field to
    cover the image's shorter side, keeping the last map at least 2x2.

    An object the last block cannot see whole is classified from its parts; at 64x64 the
    former fixed three blocks (a 22-pixel field) left `simple_cnn` near chance on
    `vk.data.shapes` after 10 epochs, five blocks (94 pixels) learn it.

    Example:

    >>> default_filters((64, 64, 3)), default_filters((32, 32, 1))
    ((32, 64, 128, 256, 256), (32, 64, 128, 256))
    """
    known = [int(size) for size in input_shape[:2] if size is not None]
    if not known:
        raise ValueError("filters=None sizes simple_cnn to the image size, but input_shape="
                         f"{tuple(input_shape)!r} gives no height or width; pass filters, "
                         "e.g. filters=(32, 64, 128, 256, 256) (5 blocks, images of at "
                         "least 32x32).")
    side = min(known)
    blocks = 1
    while receptive_field(blocks) < side and side // 2 ** (blocks + 1) >= 2:
        blocks += 1
    return tuple(min(FIRST_FILTERS * 2 ** index, MAX_FILTERS) for index in range(blocks))


@register("simple_cnn", task="classification")
def simple_cnn(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    filters: tuple[int, ...] | None = None,
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
        filters: filters per block, or None to size the network to `input_shape`
            (`default_filters`: 5 blocks at 64x64, 4 at 32x32). With n blocks, images
            must be at least 2**n pixels high and wide. Defaults to None.
        dropout: dropout before the classifier. Defaults to 0.25.
        activation: final activation, "softmax" or None for logits. Defaults to "softmax".
        name: model name.

    Returns:
        A `keras.Model` from images `[B,H,W,C]` to class scores `[B, num_classes]`.

    Raises:
        ValueError: for empty `filters`, images smaller than `2**len(filters)` pixels
            on a side (naming the size received and the minimum; a side given as None
            takes any size), or `filters=None` with both sides None.

    Example:

    >>> model = simple_cnn((28, 28, 1), num_classes=3, filters=(8, 16))
    >>> model.output_shape
    (None, 3)
    """
    if filters is None:
        filters = default_filters(input_shape)
    if not filters:
        raise ValueError("Expected at least one entry in filters; received an empty tuple.")
    minimum = 2 ** len(filters)  # each block's 2x2 pooling halves the map (rounding down)
    known = [int(size) for size in input_shape[:2] if size is not None]  # None: any size
    if known and min(known) < minimum:
        raise ValueError(f"simple_cnn with {len(filters)} blocks (filters={tuple(filters)}) "
                         f"halves the image {len(filters)} times and needs images of at "
                         f"least {minimum}x{minimum} pixels; received "
                         f"input_shape={tuple(input_shape)!r}. Pass fewer filters or "
                         "filters=None (sized to the input).")
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
