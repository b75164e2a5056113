"""Precise batch-norm statistics: recomputed with the current weights before each validation.

In training, `BatchNormalization` normalizes with the batch's own mean and variance and
keeps an exponential moving average of them (Keras's `momentum=0.99`) for inference.
That average mixes statistics of weights from the last hundreds of steps. Early in a
short run, at a high learning rate, the weights change faster than the average follows,
so the model validates (and is checkpointed, and exported) with statistics of networks
it no longer is: Wu & Johnson (2021) call this EMA's inaccuracy and recompute the
population statistics with the final weights ("PreciseBN", section 3.1; fvcore's
`update_bn_stats`, PyTorch's `torch.optim.swa_utils.update_bn`).

Measured on visionkit's 64x64 shapes (2,048 images, ResNet-18 with the deep stem, fit's
defaults, seed 0, one thread): with the moving averages, validation accuracy per epoch
0.200, 0.246, 0.200, 0.376, 0.488, 0.600, 0.646, 0.568, 0.710, 0.888 while training
reached 0.919 (validation loss up to 25 in the first epochs); recomputed before each
validation from 16 batches of 32 unaugmented images, averaging the batch variances:
0.227, 0.300, 0.266, 0.361, 0.463, 0.629, 0.802, 0.846, 0.932, 0.939; from augmented
batches with the variance over all their values: 0.212, 0.276, 0.227, 0.320, 0.437,
0.654, 0.771, 0.815, 0.895, 0.905 (training 0.903). The digits recipe (2 epochs of 6
steps, 16x16): validation accuracy 0.760 against 0.109 with the moving averages, with
the same training loss curve. U-Net (16 filters, 1,024
images, 12 epochs): 0.753 against 0.752 with the moving averages (batch-norm momentum
0.9 follows the weights closely); averaging unaugmented batches' variances it was 0.672.

`fit` recomputes them by default (`precise_bn`); `recompute_batch_norm_statistics` does
it for any model and data.

Reference:
    - [Rethinking "Batch" in BatchNorm](https://arxiv.org/abs/2105.07576) (Wu & Johnson,
      2021), section 3: EMA statistics and PreciseBN.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
>>> batches = [np.full((8, 4), 3.0, "float32"), np.full((8, 4), 5.0, "float32")]
>>> recompute_batch_norm_statistics(model, batches)
2
>>> model.layers[0].moving_mean.numpy().tolist()
[4.0, 4.0, 4.0, 4.0]
>>> model.layers[0].moving_variance.numpy().tolist()  # of the 16 values 3 and 5
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable
from typing import Any

import keras
import tensorflow as tf

from visionkit.keras_internals import flatten_layers, seed_generators
from visionkit.train.distribute import num_workers

__all__ = ["PRECISE_BN_IMAGES", "PreciseBatchNorm", "precise_batch_norm",
           "recompute_batch_norm_statistics", "trainable_batch_norm_layers"]

# Training images the statistics are averaged over: 16 batches of 32 measured above.
PRECISE_BN_IMAGES = 512


def trainable_batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The batch-norm layers at any depth of `model` that normalize with batch statistics
    in training (frozen ones, `trainable=False`, keep their moving statistics)."""
    return [layer for layer in flatten_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _model_inputs(model: keras.Model, batch: Any) -> Any:
    """The model's inputs of one batch, as Keras's `fit` reads a batch: `(inputs,
    targets[, weights])`, `(inputs,)` or the inputs alone, the inputs a tensor, a
    tuple/list or a dict matching `model.inputs`. A multi-input model's batch of exactly
    its inputs as a flat tuple (`(x1, x2)`, no targets: as many arrays as inputs, each of
    its input's rank and fixed dimensions) is taken as its inputs."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch
    expected = _expected_inputs(model)
    if (expected is not None and len(expected) > 1 and len(batch) == len(expected)
            and all(_fits(item, tensor) for item, tensor in zip(batch, expected))):
        return batch
    return batch[0]


def _fits(value: Any, tensor: Any) -> bool:
    """Whether `value` is an array of `tensor`'s rank and (where fixed) dimensions."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != len(tensor.shape):
        return False
    return all(want is None or have is None or int(have) == int(want)
               for have, want in zip(list(shape)[1:], list(tensor.shape)[1:]))


def _expected_inputs(model: keras.Model) -> list | None:
    """`model.inputs` (None for a subclassed model not yet built on symbolic inputs)."""
    try:
        return list(model.inputs) if model.inputs else None
    except (AttributeError, ValueError):
        return None


def _describe(value: Any) -> str:
    """`value`'s structure with each tensor as its shape, for messages."""
    return str(tf.nest.map_structure(
        lambda item: f"<{list(getattr(item, 'shape', ()))}>", value)).replace("'", "")


def _check_inputs(model: keras.Model, inputs: Any) -> None:
    """Raises a `ValueError` naming what a batch gave and what `model` takes when the
    number of tensors, or a dict's keys, do not match `model.inputs`."""
    expected = _expected_inputs(model)
    if expected is None:
        return
    try:
        structure = model.input  # a dict for a model built on a dict of inputs
    except (AttributeError, ValueError):
        structure = None
    names = (list(structure) if isinstance(structure, dict)
             else [tensor.name.split(":")[0] for tensor in expected])
    wanted = ", ".join(f"{name} {list(tensor.shape)}" for name, tensor in zip(names, expected))
    problem = None
    if isinstance(inputs, dict) and not set(names) <= set(inputs):
        problem = f"a dict with keys {sorted(inputs)}"
    elif len(tf.nest.flatten(inputs)) != len(expected):
        problem = f"{len(tf.nest.flatten(inputs))} tensor(s), {_describe(inputs)}"
    else:
        given = ([inputs[name] for name in names] if isinstance(inputs, dict)
                 and set(names) <= set(inputs) else tf.nest.flatten(inputs))
        unbatched = [(name, list(getattr(item, "shape", ())), list(tensor.shape))
                     for name, item, tensor in zip(names, given, expected)
                     if len(getattr(item, "shape", ())) == len(tensor.shape) - 1]
        if unbatched:
            name, have, want = unbatched[0]
            raise ValueError(
                f"recompute_batch_norm_statistics: model {model.name!r} takes input {name!r} of "
                f"shape {want} (a batch axis first); the first batch gave shape {have}, "
                f"one example: the data are not batched (call .batch(n) on the dataset; "
                f"iterating a NumPy array also yields single examples).")
    if problem:
        raise ValueError(
            f"recompute_batch_norm_statistics: model {model.name!r} takes {len(expected)} "
            f"input(s) ({wanted}); the first batch gave as its inputs {problem}. Expected "
            f"batches as Keras's fit takes them: (inputs, targets[, weights]) or the "
            f"inputs alone, the inputs a tensor, a tuple/list in the order of model.inputs "
            f"or a dict keyed by their names; e.g. ((x1, x2), y) for two inputs.")


def _batch_size(inputs: Any) -> tf.Tensor:
    """The number of examples in a batch of inputs (its first tensor's first axis)."""
    return tf.cast(tf.shape(tf.nest.flatten(inputs)[0])[0], tf.float32)


def recompute_batch_norm_statistics(model: keras.Model, batches: Iterable[Any],
                                    max_batches: int | None = None,
                                    forward: Any = None) -> int:
    """Sets every trainable batch-norm layer's moving mean and variance to their average
    over `batches` with the current weights (Wu & Johnson 2021, PreciseBN).

    Each batch runs through `model` in training mode (batch statistics, as in a training
    step); each layer's mean is the mean over batches of the batch means, and its
    variance the variance over every batch's values, `mean(var_b + mean_b ** 2) -
    mean ** 2` (batches of equal size; Wu & Johnson 2021, section 3.1), which unlike the
    mean of the batch variances includes how the batch means spread. Nothing else
    changes: weights, optimizer state, the frozen layers' statistics and the layers'
    random streams (dropout's) are kept, so training goes on as it would have.

    Args:
        model: a Keras model (batch-norm layers at any depth are found).
        batches: an iterable of batches as Keras's `fit` takes them: `(inputs,
            targets[, weights])` or the inputs alone, e.g. a `tf.data.Dataset`. The
            inputs are a tensor (raw 0..255 images for visionkit's models) or, for a
            model with several inputs, a tuple/list in the order of `model.inputs` or a
            dict keyed by their names (`((x1, x2), y)`; a flat `(x1, x2)` of exactly the
            model's inputs is taken as its inputs).
        max_batches: use at most this many batches. Defaults to None (all).
        forward: a callable running `model(images, training=True)`, e.g. a
            `tf.function` kept across calls, traced with the same layers trainable as
            now (a trace keeps which layers update their statistics). Defaults to a new
            `tf.function`.

    Returns:
        The number of batches used (0 when the model has no trainable batch norm, which
        is then left as it is).

    Raises:
        ValueError: when `batches` yields no batch for a model with batch norm, when
            a batch's inputs do not match `model.inputs` (naming both), when the first
            batch is one example without its batch axis (an unbatched dataset), or when
            `batches` is an array (a NumPy array iterates over single examples).
    """
    if hasattr(batches, "shape") and not isinstance(batches, tf.data.Dataset):
        raise ValueError(
            f"recompute_batch_norm_statistics: expected an iterable of batches (a batched "
            f"tf.data.Dataset, a list of arrays); received an array of shape "
            f"{list(batches.shape)}, whose items are single examples. Pass "
            f"tf.data.Dataset.from_tensor_slices(x).batch(32), or [x] for one batch.")
    layers = trainable_batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    # The layers' random streams (dropout, noise) come back as they were, so recomputing
    # draws nothing training would have drawn: a run trains the same with or without it.
    streams = [generator for layer in flatten_layers(model, include_self=True)
               for generator in seed_generators(layer)]
    states = [tf.identity(tf.convert_to_tensor(generator.state)) for generator in streams]
    sums = [[tf.zeros_like(tf.convert_to_tensor(layer.moving_mean)),
             tf.zeros_like(tf.convert_to_tensor(layer.moving_variance))] for layer in layers]
    forward = forward or tf.function(lambda images: model(images, training=True))
    used = 0
    examples = 0.0
    try:
        for layer in layers:  # each training-mode call now stores its batch's statistics
            layer.momentum = 0.0
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            inputs = _model_inputs(model, batch)
            if not used:
                _check_inputs(model, inputs)
            forward(inputs)
            size = _batch_size(inputs)
            for pair, layer in zip(sums, layers):
                mean = tf.convert_to_tensor(layer.moving_mean)
                pair[0] += size * mean
                pair[1] += size * (tf.convert_to_tensor(layer.moving_variance)
                                   + tf.square(mean))
            used += 1
            examples += float(size)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for generator, state in zip(streams, states):
            generator.state.assign(state)
    if not used:
        raise ValueError(f"Expected at least one batch to recompute the batch-norm "
                         f"statistics of model {model.name!r}; received none.")
    for (means, squares), layer in zip(sums, layers):
        mean = means / examples
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(tf.maximum(squares / examples - tf.square(mean), 0.0))
    return used


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes batch-norm statistics before each validation and when training ends.

    Before every validation of `fit` (Keras calls `on_test_begin` there), and at the end
    of training when no validation followed the last steps, the statistics of `model`'s
    trainable batch-norm layers become the average over `images` training images
    (`recompute_batch_norm_statistics`), so validation, the best checkpoint and the
    returned model use statistics of their own weights.

    Args:
        model: the model whose layers are recomputed (the trained model, not a training
            wrapper around it).
        batches: a function of no arguments returning an iterable of training batches
            (shuffled; without augmentation, as inference sees images).
        batch_size: images per batch.
        images: training images per recomputation. Defaults to `PRECISE_BN_IMAGES`.
    """

    def __init__(self, model: keras.Model, batches: Any, batch_size: int,
                 images: int = PRECISE_BN_IMAGES) -> None:
        super().__init__()
        self._target = model
        self._batches = batches
        self._max_batches = max(1, math.ceil(int(images) / max(int(batch_size), 1)))
        self._forward = None
        self._traced_for: tuple[int, ...] | None = None
        self._stale = False
        self._training = False

    def _recompute(self) -> None:
        # A traced forward keeps which layers were trainable (and their momentum) when it
        # was traced: after fine-tuning unfreezes a backbone it would leave the unfrozen
        # layers' statistics as they were, so it is traced again for the new set.
        trainable = tuple(id(layer) for layer in trainable_batch_norm_layers(self._target))
        if self._forward is None or trainable != self._traced_for:
            target = self._target
            self._forward = tf.function(lambda images: target(images, training=True))
            self._traced_for = trainable
        recompute_batch_norm_statistics(self._target, self._batches(), self._max_batches,
                                        forward=self._forward)
        self._stale = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._training = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._stale = True

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._training and self._stale:
            self._recompute()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._training = False
        if self._stale:
            self._recompute()


def precise_batch_norm(model: keras.Model, data: Any, precise_bn: bool | int,
                       strategy: tf.distribute.Strategy | None = None
                       ) -> PreciseBatchNorm | None:
    """`fit`'s `precise_bn` option as a callback, or None when there is nothing to do.

    The batches are `data`'s training split, shuffled, without its augmentation and
    without its cache: augmentation layers keep random state that training's pipeline
    reads too (reading them here changed the training batches, and under load made two
    seeded runs differ), and a second reader of a cache file would collide with
    training's. Each recomputation reads the first batches. On U-Net (16 filters, 64x64
    shapes, after 3 epochs) validation mean IoU was 0.293 with Keras's moving averages
    and 0.293 recomputed from unaugmented images (0.303 from augmented ones).

    Args:
        model: the trained model (not a training wrapper).
        data: the `Data` set `fit` trains on (batched as training is).
        precise_bn: True (`PRECISE_BN_IMAGES` images), a number of images, or False.
        strategy: `fit`'s strategy, or None.

    Returns:
        A `PreciseBatchNorm`, or None for `precise_bn=False`, a model without trainable
        batch norm, or training on several workers (said in a warning: each worker
        would compute its own statistics).

    Raises:
        ValueError: for a `precise_bn` that is neither a bool nor a positive integer.
    """
    if isinstance(precise_bn, bool):
        images = PRECISE_BN_IMAGES if precise_bn else 0
    elif isinstance(precise_bn, int) and precise_bn > 0:
        images = int(precise_bn)
    else:
        raise ValueError(f"Expected precise_bn as True, False or a positive number of "
                         f"training images; received precise_bn={precise_bn!r}.")
    if not images or not trainable_batch_norm_layers(model):
        return None
    if num_workers(strategy) > 1:
        warnings.warn("precise_bn is not available when training on several workers; "
                      "batch norm keeps Keras's moving averages (pass precise_bn=False to "
                      "say so).", stacklevel=3)
        return None
    plain = dataclasses.replace(data.with_augmentation(None), cache=False)
    return PreciseBatchNorm(model, lambda: plain.train, data.batch_size, images)
