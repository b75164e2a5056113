"""`StochasticDepth`: a residual branch dropped at random during training.

Reference:
    - [Deep Networks with Stochastic Depth](https://arxiv.org/abs/1603.09382)
      (Huang, Sun, Liu, Sedra & Weinberger, ECCV 2016)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["StochasticDepth"]


@keras.saving.register_keras_serializable(package="visionkit")
class StochasticDepth(keras.layers.Layer):
    """Adds a residual branch to its shortcut, keeping the branch with probability p.

    Training: `shortcut + b * residual` with `b ~ Bernoulli(p)` drawn per image (the
    paper draws one per mini-batch; per image is the common refinement and has the same
    expectation). Inference: `shortcut + p * residual`, the expectation (Huang et al.
    2016, Eq. 5). With `survival_probability=1` the layer is a plain addition.

    Args:
        survival_probability: p in 0..1, the probability that the branch is kept.
        seed: seed of the Bernoulli draws. Defaults to None.

    Input shape:
        `[shortcut, residual]`, two tensors of the same shape `[B, ...]`.

    Output shape:
        The shape of either input.

    Returns:
        The sum, with the branch dropped or scaled as above.

    Raises:
        ValueError: for a probability outside 0..1.

    Example:

    >>> import numpy as np
    >>> ones = np.ones((2, 3), "float32")
    >>> StochasticDepth(0.5)([ones, ones], training=False).numpy()[0].tolist()
    [1.5, 1.5, 1.5]
    """

    def __init__(self, survival_probability: float, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(survival_probability) <= 1.0:
            raise ValueError(f"Expected survival_probability in 0..1; received "
                             f"survival_probability={survival_probability!r}.")
        self.survival_probability = float(survival_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        shortcut, residual = inputs
        if self.survival_probability == 1.0:
            return shortcut + residual
        if not training:
            return shortcut + self.survival_probability * residual
        shape = [tf.shape(residual)[0]] + [1] * (len(residual.shape) - 1)
        uniform = keras.random.uniform(shape, seed=self.seed_generator)
        keep = tf.cast(uniform < self.survival_probability, residual.dtype)
        return shortcut + keep * residual

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "survival_probability": self.survival_probability,
                "seed": self.seed}
