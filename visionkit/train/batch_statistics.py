"""Batch normalization checked against the batch it will normalize in training.

In training, `BatchNormalization` normalizes each channel over the batch and the
feature map's positions: `batch_size * height * width` values per channel. A deep
classifier on small images ends in 1x1 maps, so with a batch of 2 its last batch-norm
layers normalize 2 values per channel. Their output is then `beta +- gamma` whatever the
input (one bit per channel), and their gradient grows like `gamma / sigma` with the
batch's spread `sigma`, which two values make arbitrarily small: DenseNet-121 at 32x40
pixels with a batch of 2 measured a gradient norm of 4e8 on its first convolution (470
with a batch of 8, 415 at 64x64 with a batch of 2). One SGD step at 0.05 then overflows
the moving statistics, and the model predicts NaN in inference while the training loss
of that step was finite (2.22). With a single value per channel the output is `beta`
alone and nothing before the layer is learned (PyTorch refuses that case, "Expected more
than 1 value per channel when training").

`check_batch_norm_statistics` warns before the first step, naming the layers, their map
sizes and the smallest batch that gives each at least `MIN_VALUES_PER_CHANNEL` values.

Reference:
    - [Batch Normalization](https://arxiv.org/abs/1502.03167) (Ioffe & Szegedy, 2015),
      Algorithm 1: statistics over the mini-batch and, for convolutions, its positions.
    - [Group Normalization](https://arxiv.org/abs/1803.08494) (Wu & He, 2018): batch
      norm's error grows as the batch shrinks.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((1, 1, 4)), keras.layers.BatchNormalization()])
>>> [(entry.values_per_channel, entry.batch_needed)
...  for entry in batch_norm_sample_counts(model, batch_size=2)]
[(2, 3)]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import keras

__all__ = ["MIN_VALUES_PER_CHANNEL", "BatchNormCount", "batch_norm_sample_counts",
           "check_batch_norm_statistics", "smallest_batch"]

# Two values per channel normalize to exactly +-1 (one bit) with an unbounded gradient;
# from three on, the normalized values carry the inputs' order and spacing.
MIN_VALUES_PER_CHANNEL = 3
_EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class BatchNormCount:
    """How many values one batch-norm layer normalizes per channel in training.

    Attributes:
        layer: the layer's path (`"backbone/conv5_block1_0_bn"` inside a nested model).
        positions: values per channel and image (`height * width` of its input map).
        values_per_channel: `batch_size * positions`.
        batch_needed: the smallest batch giving `MIN_VALUES_PER_CHANNEL` values.
    """

    layer: str
    positions: int
    values_per_channel: int
    batch_needed: int


def _batch_norm_layers(model: keras.Model, prefix: str = ""):
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from _batch_norm_layers(layer, prefix=f"{path}/")
        elif isinstance(layer, keras.layers.BatchNormalization):
            yield path, layer


def _positions(layer: keras.layers.BatchNormalization) -> int | None:
    """Values per channel and example: the input's sizes on every axis but batch and channels."""
    try:
        shape = tuple(layer.input.shape)
    except (AttributeError, ValueError):
        return None  # a layer never called symbolically has no known input
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    kept = {axis % len(shape) for axis in axes} | {0}
    sizes = [size for axis, size in enumerate(shape) if axis not in kept]
    if any(size is None for size in sizes):
        return None  # a variable image size: unknown until the data comes
    return math.prod(sizes)


def batch_norm_sample_counts(model: keras.Model, batch_size: int) -> list[BatchNormCount]:
    """Every trainable batch-norm layer with fewer than `MIN_VALUES_PER_CHANNEL` values.

    Args:
        model: a built Keras model (nested models are walked).
        batch_size: the batch one replica normalizes in training.

    Returns:
        A list of `BatchNormCount`, in layer order; empty when every layer sees enough.
        Frozen layers (`trainable=False` normalize with their moving statistics) and
        layers on maps of unknown size are left out.
    """
    counts = []
    for path, layer in _batch_norm_layers(model):
        positions = _positions(layer)
        if positions is None or not layer.trainable or positions < 1:
            continue
        values = int(batch_size) * positions
        if values < MIN_VALUES_PER_CHANNEL:
            counts.append(BatchNormCount(path, positions, values,
                                         math.ceil(MIN_VALUES_PER_CHANNEL / positions)))
    return counts


def smallest_batch(batch_size: int, train_size: int | None) -> int:
    """The smallest batch an epoch trains on: its last one holds `train_size % batch_size`
    images when that is not 0 (visionkit's pipelines keep the remainder).

    Example:

    >>> smallest_batch(8, 18), smallest_batch(8, 16), smallest_batch(8, None)
    (2, 8, 8)
    """
    batch_size = int(batch_size)
    if not train_size:
        return batch_size
    return int(train_size) % batch_size or batch_size


def check_batch_norm_statistics(model: keras.Model, batch_size: int,
                                train_size: int | None = None,
                                replicas: int = 1) -> list[BatchNormCount]:
    """Warns once when batch-norm layers would normalize too few values in training.

    Every epoch ends with its remainder batch (`train_size % batch_size` images), so
    the layers are checked against the smaller of the two.

    Args:
        model: a built Keras model.
        batch_size: the global training batch.
        train_size: the number of training images, or None when unknown (only
            `batch_size` is checked). Defaults to None.
        replicas: the replicas the batch is split across. Defaults to 1.

    Returns:
        The layers warned about (see `batch_norm_sample_counts`).

    Warns:
        UserWarning: naming how many layers normalize fewer than
            `MIN_VALUES_PER_CHANNEL` values per channel, up to three of them with their
            map size, and the batch size that would be enough (and, for the last batch
            of an epoch, its size and `train_size`).
    """
    replicas = max(int(replicas), 1)
    full = int(batch_size) // replicas
    last = smallest_batch(batch_size, train_size) // replicas
    if last < 1:  # some replicas get no image of the remainder: the others get one
        last = 1
    counts = batch_norm_sample_counts(model, min(full, last))
    if counts:
        examples = "; ".join(
            f"{count.layer} ({count.positions} position(s) per image -> "
            f"{count.values_per_channel} value(s))" for count in counts[:_EXAMPLES_SHOWN])
        needed = max(count.batch_needed for count in counts)
        if last < full:
            when = (f"in the last batch of each epoch ({int(train_size)} training images "
                    f"in batches of {int(batch_size)} leave {smallest_batch(batch_size, train_size)})")
            remedy = (f"Use a batch size that divides {int(train_size)} or leaves at least "
                      f"{needed * replicas} images in the last batch, larger images, or "
                      "freeze those layers.")
        else:
            when = f"with a batch of {full}"
            remedy = (f"Use a batch of at least {needed * replicas}, larger images, or "
                      "freeze those layers.")
        warnings.warn(
            f"{len(counts)} batch-normalization layer(s) of model {model.name!r} normalize "
            f"fewer than {MIN_VALUES_PER_CHANNEL} values per channel in training {when}: "
            f"{examples}. Their outputs carry one bit or none and their gradients can "
            f"explode (a NaN model after one step). {remedy}",
            stacklevel=2)
    return counts
