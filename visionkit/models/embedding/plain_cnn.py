"""A plain convolutional feature extractor for embeddings: 3x3 ReLU convolutions, no batch norm.

Stages of 3x3 "same" convolutions with ReLU (VGG's building block, Simonyan & Zisserman
2015, without its batch-norm variant), a 2x2 max pool between stages, and no pooling
after the last: the last map keeps the spatial layout, which `siamese(pooling=
"flatten")` turns into the embedding. For classes never trained on, this is what
verified them best among the networks measured on the digits (train 0-6, verify 7-9,
tests/metric/test_unseen_digits_slow.py): batch norm (0.65-0.74) and global average
pooling (-0.02 to -0.05) both lowered the verification AUC.

It is not one of the P1..P5 backbones (`visionkit.models.backbones`): it has as many
levels as stages and works on images as small as 8x8, so `siamese` wires it by the name
"plain_cnn" itself.

Reference:
    - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
      https://arxiv.org/abs/1409.1556) (Simonyan & Zisserman, ICLR 2015; arXiv 2014)

Example:

>>> import keras
>>> inputs = keras.Input((16, 16, 3))
>>> tuple(plain_cnn_features(inputs, stages=((32, 32), (64, 64))).shape)
(None, 8, 8, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from visionkit.models.common import rescale

__all__ = ["PLAIN_CNN", "PLAIN_CNN_STAGES", "plain_cnn_features"]

# The name `siamese(backbone=...)` knows this network by.
PLAIN_CNN = "plain_cnn"
# Filters of each 3x3 convolution, per stage: the network of the unseen-digits test
# (32, 32, pool, 64, 64).
PLAIN_CNN_STAGES = ((32, 32), (64, 64))


def _check_stages(stages: Any) -> tuple[tuple[int, ...], ...]:
    expected = ("Expected stages as a list of stages, each a list of filter counts >= 1 "
                "(one 3x3 convolution each), e.g. [[32, 32], [64, 64]]")
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence) or not stages:
        raise ValueError(f"{expected}; received stages={stages!r}.")
    checked = []
    for stage in stages:
        if isinstance(stage, (str, bytes)) or not isinstance(stage, Sequence) or not stage \
                or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in stage):
            raise ValueError(f"{expected}; received stages={stages!r} (stage {stage!r}).")
        checked.append(tuple(int(f) for f in stage))
    return tuple(checked)


def plain_cnn_features(inputs: keras.KerasTensor,
                       stages: Sequence[Sequence[int]] = PLAIN_CNN_STAGES
                       ) -> keras.KerasTensor:
    """Wires the plain CNN onto `inputs` (raw 0..255 pixels) and returns its last map.

    Layer names: `stage{s}_conv{i}` (counted from 1) and `stage{s}_pool` between stages.
    Convolutions use Keras's default initialisation (Glorot uniform), as measured.

    Args:
        inputs: raw images `[B, H, W, C]` in 0..255.
        stages: filters of each 3x3 convolution, per stage; a 2x2 max pool separates
            stages. Defaults to `((32, 32), (64, 64))`.

    Returns:
        The last stage's map `[B, H / 2^(S-1), W / 2^(S-1), filters]` for S stages
        (sides rounded down by each pool).

    Raises:
        ValueError: for stages that are not lists of positive filter counts, or images
            smaller than `2^(S-1)` pixels on a side.
    """
    stages = _check_stages(stages)
    minimum = 2 ** (len(stages) - 1)
    known = [int(size) for size in tuple(inputs.shape)[1:3] if size is not None]
    if known and min(known) < minimum:
        raise ValueError(f"plain_cnn with {len(stages)} stages pools {len(stages) - 1} "
                         f"times and needs images of at least {minimum}x{minimum} pixels; "
                         f"received input shape {tuple(inputs.shape)[1:]}.")
    x = rescale(inputs)
    for stage, filters in enumerate(stages, start=1):
        if stage > 1:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage - 1}_pool")(x)
        for index, count in enumerate(filters, start=1):
            x = keras.layers.Conv2D(count, 3, padding="same", activation="relu",
                                    name=f"stage{stage}_conv{index}")(x)
    return x
