"""Optimizers and learning-rate schedules by name."""

from __future__ import annotations

import keras

__all__ = ["make_optimizer", "OPTIMIZERS", "SCHEDULES", "DEFAULT_LEARNING_RATES"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = (None, "constant", "cosine", "plateau")

# Usual starting points: 0.1 for SGD with momentum (He et al. 2015), 1e-3 for the
# adaptive methods (Kingma & Ba 2015), 1e-2 for Adagrad (Duchi et al. 2011).
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3,
                          "adagrad": 1e-2}


def make_optimizer(
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float | None = None,
    *,
    schedule: str | None = None,
    total_steps: int | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float | None = None,
    warmup_steps: int = 0,
) -> keras.optimizers.Optimizer:
    """Builds an optimizer by name, with an optional cosine decay.

    Args:
        optimizer: "sgd" (with `momentum`, `nesterov`), "adam", "adamw", "rmsprop",
            "adagrad", or an optimizer instance (returned as is).
        learning_rate: initial learning rate. Defaults to `DEFAULT_LEARNING_RATES[name]`.
        schedule: None/"constant", "cosine" (a linear warmup from 0 over `warmup_steps`
            (Goyal et al. 2017), then cosine decay to 0 over the remaining steps, as
            Keras's `CosineDecay` does) or "plateau" (constant here; `fit` adds
            ReduceLROnPlateau).
        total_steps: training steps, needed by "cosine".
        momentum: SGD momentum. Defaults to 0.9.
        nesterov: Nesterov momentum for SGD. Defaults to False.
        weight_decay: decoupled weight decay. Defaults to 1e-4 for AdamW, None otherwise.
        warmup_steps: steps of linear warmup of the "cosine" schedule. Defaults to 0.

    Raises:
        ValueError: for an unknown optimizer or schedule name.

    Example:

    >>> make_optimizer("sgd", 0.05, nesterov=True).nesterov
    True
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    name = str(optimizer).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS} or a "
                         "keras.optimizers.Optimizer.")
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; expected one of {SCHEDULES}.")
    rate = DEFAULT_LEARNING_RATES[name] if learning_rate is None else float(learning_rate)
    if rate <= 0:
        raise ValueError(f"Expected learning_rate > 0; received {learning_rate!r}.")
    lr: float | keras.optimizers.schedules.LearningRateSchedule = rate
    if schedule == "cosine":
        if not total_steps:
            raise ValueError("schedule='cosine' needs the number of training steps.")
        warmup = int(warmup_steps)
        if not 0 <= warmup < int(total_steps):
            raise ValueError(f"Expected 0 <= warmup_steps < total_steps ({total_steps}); "
                             f"received warmup_steps={warmup_steps!r}.")
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate, decay_steps=int(total_steps) - warmup,
            warmup_target=rate if warmup else None, warmup_steps=warmup)
    elif warmup_steps:
        raise ValueError(f"warmup_steps={warmup_steps!r} needs schedule='cosine'; received "
                         f"schedule={schedule!r}.")
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay)
    if name == "adam":
        return keras.optimizers.Adam(lr, weight_decay=weight_decay)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=1e-4 if weight_decay is None else weight_decay)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr, weight_decay=weight_decay)
    return keras.optimizers.Adagrad(lr, weight_decay=weight_decay)
