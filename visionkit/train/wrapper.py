"""Models that train another model: adversarial training and distillation.

Some training methods need a training step Keras's own does not take: adversarial
training attacks each batch first (Madry et al. 2018), distillation adds a teacher's
outputs to the loss (Hinton et al. 2015). Each is a Keras model wrapping the model being
trained (`TrainingWrapper`); `vk.train.fit` compiles and trains the wrapper, while the
checks before training, the best checkpoint (`checkpoints/best.keras`), the restored best
weights, the evaluation, `Run.model` and exports see only the wrapped model
(`trained_model`).

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> trained_model(model) is model
True
"""

from __future__ import annotations

import keras

__all__ = ["TrainingWrapper", "trained_model"]


class TrainingWrapper:
    """Mixin of a `keras.Model` that trains another model, `trained_model`."""

    @property
    def trained_model(self) -> keras.Model:
        raise NotImplementedError


def trained_model(model: keras.Model) -> keras.Model:
    """The model a `TrainingWrapper` trains, or `model` itself."""
    return model.trained_model if isinstance(model, TrainingWrapper) else model
