"""Two-phase fine-tuning: train the head on a frozen backbone, then unfreeze with a lower rate.

The usual transfer-learning recipe (Keras's "Transfer learning & fine-tuning" guide;
Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS 2014):

1. **Frozen phase** (`freeze_epochs` epochs): the backbone's weights are not trained and
   its BatchNormalization layers run in inference mode (a layer with `trainable=False`
   uses and keeps its moving statistics in Keras 3), so a randomly initialised head does
   not wreck the pretrained features with large early gradients.
2. **Fine-tuning phase** (the remaining epochs): the backbone (all of it, or its last `k`
   stages) is unfrozen and the model recompiled with a fresh optimizer at
   `learning_rate_factor` times the rate; a learning-rate schedule continues from the step
   where phase 1 stopped, scaled by the factor.

`fit(..., fine_tune={...})` runs both phases as two Keras `fit` calls over one epoch
count; `history.csv` gets `fine_tune_phase` (1 or 2) and `learning_rate` per epoch.

"Stages" are the backbone's resolution levels P1..P5 (DESIGN.md, principle 7):
`last_k_blocks` with `k=2` trains what computes P4 and P5 from P3 and keeps everything up
to P3 frozen.

Example:

>>> spec = parse_fine_tune({"freeze_epochs": 2, "unfreeze": "last_k_blocks", "k": 2}, 5)
>>> spec.freeze_epochs, spec.unfreeze, spec.k, spec.learning_rate_factor
(2, 'last_k_blocks', 2, 0.1)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras

__all__ = ["FineTune", "PhaseLogger", "ScaledSchedule", "find_backbone", "fine_tune_fit",
           "parse_fine_tune", "set_backbone_trainable"]

UNFREEZE_CHOICES = ("all", "last_k_blocks")
# Keras's transfer-learning guide fine-tunes at a rate about ten times lower.
DEFAULT_LEARNING_RATE_FACTOR = 0.1
_LEVELS = 5
_KEYS = ("freeze_epochs", "unfreeze", "k", "learning_rate_factor")


@dataclasses.dataclass(frozen=True)
class FineTune:
    """A validated fine-tuning plan (see `parse_fine_tune`)."""

    freeze_epochs: int
    unfreeze: str = "all"
    k: int | None = None
    learning_rate_factor: float = DEFAULT_LEARNING_RATE_FACTOR


def parse_fine_tune(spec: Mapping[str, Any] | FineTune | None, epochs: int) -> FineTune | None:
    """Validates a `fine_tune` argument against the run's `epochs`.

    Args:
        spec: None, a `FineTune`, or a dict with `freeze_epochs` (int, 1..epochs: epochs
            of the frozen phase), `unfreeze` ("all" or "last_k_blocks"), `k` (stages to
            unfreeze with "last_k_blocks", 1..5) and `learning_rate_factor` (0 < f <= 1,
            default 0.1).
        epochs: the run's total epochs.

    Returns:
        A `FineTune`, or None.

    Raises:
        ValueError: naming the key and value for an unknown key or a bad value.
    """
    if spec is None or isinstance(spec, FineTune):
        plan = spec
    else:
        if not isinstance(spec, Mapping):
            raise ValueError(f"Expected fine_tune as a dict with keys {', '.join(_KEYS)}; "
                             f"received fine_tune={spec!r}.")
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"Unknown fine_tune key(s) {', '.join(map(repr, unknown))}; "
                             f"expected keys: {', '.join(_KEYS)}. Received fine_tune={spec!r}.")
        if "freeze_epochs" not in spec:
            raise ValueError(f"fine_tune needs 'freeze_epochs' (epochs of the frozen phase); "
                             f"received fine_tune={dict(spec)!r}.")
        plan = FineTune(freeze_epochs=spec["freeze_epochs"],
                        unfreeze=spec.get("unfreeze", "all"), k=spec.get("k"),
                        learning_rate_factor=spec.get("learning_rate_factor",
                                                      DEFAULT_LEARNING_RATE_FACTOR))
    if plan is None:
        return None
    freeze = plan.freeze_epochs
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not 1 <= freeze <= epochs:
        raise ValueError(f"Expected fine_tune['freeze_epochs'] as an integer from 1 to "
                         f"epochs={epochs}; received {freeze!r}.")
    if plan.unfreeze not in UNFREEZE_CHOICES:
        raise ValueError(f"Expected fine_tune['unfreeze'] in {UNFREEZE_CHOICES}; received "
                         f"{plan.unfreeze!r}.")
    if plan.unfreeze == "last_k_blocks":
        if isinstance(plan.k, bool) or not isinstance(plan.k, int) or \
                not 1 <= plan.k <= _LEVELS:
            raise ValueError("fine_tune['unfreeze']='last_k_blocks' needs fine_tune['k'], the "
                             f"number of backbone stages to unfreeze (1..{_LEVELS}); "
                             f"received k={plan.k!r}.")
    elif plan.k is not None:
        raise ValueError(f"fine_tune['k'] applies to unfreeze='last_k_blocks'; received "
                         f"k={plan.k!r} with unfreeze={plan.unfreeze!r}.")
    factor = plan.learning_rate_factor
    if isinstance(factor, bool) or not isinstance(factor, int | float) or \
            not 0 < float(factor) <= 1:
        raise ValueError(f"Expected fine_tune['learning_rate_factor'] in (0, 1]; received "
                         f"{factor!r}.")
    if freeze == epochs:
        warnings.warn(f"fine_tune['freeze_epochs']={freeze} equals epochs={epochs}: the "
                      "backbone stays frozen for the whole run and is never fine-tuned; "
                      "give more epochs than freeze_epochs for the second phase.",
                      UserWarning, stacklevel=3)
    return dataclasses.replace(plan, learning_rate_factor=float(factor))


def find_backbone(model: keras.Model) -> keras.Model:
    """The pretrained part of `model`: a detector's `backbone`, or a nested `*_backbone`.

    Raises:
        ValueError: when `model` has no (or more than one) such part.
    """
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, keras.Model):
        return backbone
    nested = [layer for layer in model.layers
              if isinstance(layer, keras.Model) and layer.name.endswith("_backbone")]
    if len(nested) == 1:
        return nested[0]
    raise ValueError(
        f"fine_tune needs a model whose backbone is one nested model named '*_backbone' "
        f"(the keras.applications classifiers: vk.models.build('mobilenet_v2', ...)) or a "
        f"detector's `backbone`; model {model.name!r} has "
        f"{len(nested) or 'no'} such part(s) "
        f"{[layer.name for layer in nested] if nested else ''}".rstrip() + ".")


def _level_tensor(backbone: keras.Model, level: int) -> Any:
    outputs = backbone.output
    if isinstance(outputs, dict) and f"P{level}" in outputs:
        return outputs[f"P{level}"]
    names = getattr(backbone, "pyramid_level_inputs", {}) or {}
    if f"P{level}" in names:
        return backbone.get_layer(names[f"P{level}"]).output
    return None


def set_backbone_trainable(backbone: keras.Model, unfreeze: str, k: int | None = None) -> int:
    """Unfreezes all of `backbone`, or its last `k` of five stages; returns layers unfrozen.

    With "last_k_blocks", every layer that the level-`5 - k` feature map depends on stays
    frozen (so BatchNormalization there keeps inference mode) and the rest is trainable.

    Raises:
        ValueError: when the backbone does not expose the level `5 - k`.
    """
    backbone.trainable = True
    for layer in backbone.layers:  # the container's setter skips layers when unchanged
        layer.trainable = True
    if unfreeze == "all" or k == _LEVELS:
        return len(backbone.layers)
    level = _LEVELS - int(k)
    tensor = _level_tensor(backbone, level)
    if tensor is None:
        available = [_LEVELS - lv for lv in range(1, _LEVELS)
                     if _level_tensor(backbone, lv) is not None]
        raise ValueError(f"Backbone {backbone.name!r} exposes no P{level} feature map, so "
                         f"fine_tune k={k} cannot be placed; k can be "
                         f"{sorted(available) + [_LEVELS]}.")
    kept = {id(layer) for layer in keras.Model(backbone.inputs, tensor).layers}
    unfrozen = 0
    for layer in backbone.layers:
        if id(layer) in kept:
            layer.trainable = False
        else:
            unfrozen += 1
    return unfrozen


@keras.saving.register_keras_serializable(package="visionkit")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule times a constant factor (the fine-tuning phase's rate).

    Args:
        schedule: a `LearningRateSchedule` (or its serialized config).
        factor: the multiplier.
    """

    def __init__(self, schedule: Any, factor: float) -> None:
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self) -> dict[str, Any]:
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule),
                "factor": self.factor}


def phase_optimizer(optimizer: keras.optimizers.Optimizer, factor: float,
                    continue_from: keras.optimizers.Optimizer | None = None
                    ) -> keras.optimizers.Optimizer:
    """A fresh optimizer like `optimizer`, its rate times `factor`.

    With `continue_from`, its step counter starts where that optimizer stopped, so a
    schedule continues instead of restarting.
    """
    config = optimizer.get_config()
    # A LossScaleOptimizer (mixed_float16) keeps the rate in its inner optimizer's config.
    rated = config["inner_optimizer"]["config"] if "learning_rate" not in config and \
        "inner_optimizer" in config else config
    rate = rated["learning_rate"]
    if isinstance(rate, dict):
        schedule = keras.optimizers.schedules.deserialize(rate)
        rated["learning_rate"] = schedule if factor == 1.0 else ScaledSchedule(schedule, factor)
    else:
        rated["learning_rate"] = float(rate) * factor
    fresh = type(optimizer).from_config(config)
    if continue_from is not None:
        fresh.iterations.assign(continue_from.iterations)
    return fresh


class PhaseLogger(keras.callbacks.Callback):
    """Adds `fine_tune_phase` and `learning_rate` to each epoch's logs (so to history.csv).

    Put it before the CSV logger: Keras hands every callback the same logs dict.
    """

    def __init__(self) -> None:
        super().__init__()
        self.phase = 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        logs["fine_tune_phase"] = float(self.phase)
        rate = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def fine_tune_fit(model: keras.Model, plan: FineTune, epochs: int,
                  callbacks: list[keras.callbacks.Callback],
                  compile_model: Callable[[keras.optimizers.Optimizer], None],
                  fit_epochs: Callable[[int, int, list], keras.callbacks.History],
                  resume_at: int = 0) -> keras.callbacks.History:
    """Runs the frozen phase, then the fine-tuning phase; returns the merged history.

    Args:
        model: the compiled model (its optimizer sets the phase-1 rate).
        plan: from `parse_fine_tune`.
        epochs: total epochs of both phases.
        callbacks: the run's callbacks (a `PhaseLogger` is put first).
        compile_model: compiles `model` with the given optimizer (the task's losses and
            metrics).
        fit_epochs: `fit_epochs(until_epoch, initial_epoch, callbacks)` runs Keras's fit.
        resume_at: the epoch a resumed run (its run directory's backup) starts at. A run
            resumed in the fine-tuning phase starts there directly, with the phase's
            optimizer built so the backup restores its step and moments.

    Returns:
        A `keras.callbacks.History` with both phases' epochs.
    """
    backbone = find_backbone(model)
    logger = PhaseLogger()
    callbacks = [logger, *callbacks]
    base = model.optimizer
    backbone.trainable = False
    first = phase_optimizer(base, 1.0)
    compile_model(first)
    merged = keras.callbacks.History()
    merged.history = {}
    merged.epoch = []
    phases = [(1, plan.freeze_epochs, 0)]
    if plan.freeze_epochs < epochs:
        phases.append((2, epochs, plan.freeze_epochs))
    if resume_at >= plan.freeze_epochs and len(phases) == 2:
        # The frozen phase is done: an empty phase-1 fit would restore the phase-2 backup
        # into the phase-1 optimizer (Keras skips it: the step and moments were lost).
        phases = phases[1:]
    for number, until, start in phases:
        if number == 2:
            set_backbone_trainable(backbone, plan.unfreeze, plan.k)
            second = phase_optimizer(base, plan.learning_rate_factor, continue_from=first)
            compile_model(second)
            if resume_at > start:  # built now, so the backup restores its variables
                model.optimizer.build(model.trainable_variables)
            logger.phase = 2
        history = fit_epochs(until, start, callbacks)
        merged.epoch += list(history.epoch)
        for key, values in history.history.items():
            merged.history.setdefault(key, []).extend(values)
    return merged
