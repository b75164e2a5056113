"""The recipe's `train:` section, derived from `vk.train.fit`'s own signature.

`fit`'s keyword arguments are the one definition of the training options: a recipe's
`train:` section has one field per `fit` option (same name, same default, read from the
signature), constrained by the recipe type in `RECIPE_TYPES`, except the options
`SET_ELSEWHERE` names (set by another recipe section, or Python objects a YAML file
cannot hold). `recipe_options()` builds the section's schema from the two tables, and
`TrainConfig.fit_arguments()` hands every field back to `fit` under its own name, so the
recipe runner passes what the schema validated, option for option.

A `fit` option that is in neither table is left out of the schema, and
`tests/train/test_options.py` fails naming it: add its recipe type to `RECIPE_TYPES`
(or its reason to `SET_ELSEWHERE`).

Example:

>>> options = TrainConfig(epochs=3, optimizer="sgd", class_weight="balanced")
>>> arguments = options.fit_arguments()
>>> arguments["epochs"], arguments["optimizer"], arguments["class_weight"]
(3, 'sgd', 'balanced')
>>> arguments["momentum"] == signature_defaults()["momentum"]  # fit's own default
True
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    model_validator,
)

from visionkit.train.fit import fit

__all__ = ["AdversarialConfig", "FineTuneConfig", "RECIPE_TYPES", "SET_ELSEWHERE",
           "TrainConfig", "fit_option_names", "recipe_options", "signature_defaults"]


class _Section(BaseModel):
    # allow_inf_nan=False: YAML's .inf / .nan are numbers, and no option takes them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _not_a_boolean(value: Any) -> Any:
    """A count given as `true`/`false` (e.g. `early_stopping: true`) would read as 1/0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, not the boolean {value!r} (YAML "
                         "reads true/yes/on as booleans; write the count, or null for none)")
    return value


PositiveInt = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1)]


class FineTuneConfig(_Section):
    """`train.fine_tune`: two-phase transfer learning, as `vk.train.fit(fine_tune=...)`."""

    freeze_epochs: PositiveInt
    unfreeze: Literal["all", "last_k_blocks"] = "all"
    k: Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1, le=5)] | None = None
    learning_rate_factor: Annotated[float, Field(gt=0, le=1)] = 0.1

    @model_validator(mode="after")
    def _k_with_last_k_blocks(self) -> FineTuneConfig:
        if (self.k is None) == (self.unfreeze == "last_k_blocks"):
            raise ValueError("k (stages to unfreeze) goes with unfreeze='last_k_blocks' and "
                             f"only with it; received k={self.k!r}, "
                             f"unfreeze={self.unfreeze!r}")
        return self


class AdversarialConfig(_Section):
    """`train.adversarial`: adversarial training, as `vk.train.fit(adversarial=...)`.

    Pixel units (0..255); see `visionkit.attacks`. Unset keys take the attack's
    defaults (10 steps of 2.5 * epsilon / steps for pgd).
    """

    method: Literal["pgd", "fgsm"] = "pgd"
    epsilon: Annotated[float, Field(ge=0, le=255)] = 8.0
    steps: PositiveInt | None = None
    step_size: Annotated[float, Field(gt=0)] | None = None
    norm: Literal["inf", "2"] = "inf"
    random_start: bool | None = None
    clean_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None  # share left clean


# The recipe type of each `fit` option a recipe's `train:` section holds (the name and the
# default come from fit's signature).
RECIPE_TYPES: dict[str, Any] = {
    "epochs": PositiveInt | None,  # None: the task's (visionkit.train.defaults)
    "run_dir": str | None,
    "optimizer": Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"],
    "learning_rate": Annotated[float, Field(gt=0)] | Literal["find"] | None,
    "schedule": Literal["constant", "cosine", "plateau"] | None,
    "warmup_epochs": Annotated[float, Field(ge=0)] | None,
    "momentum": Annotated[float, Field(ge=0, lt=1)],
    "nesterov": bool,
    "weight_decay": Annotated[float, Field(ge=0)] | None,
    "early_stopping": PositiveInt | None,
    "checkpoint": bool,
    "tensorboard": bool,
    "backup": bool,
    "mixed_precision": Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"],
    "jit_compile": Literal["auto"] | bool,
    "strategy": Literal["mirrored", "multi_worker", "tpu"] | None,
    "scale_learning_rate": bool,
    "global_batch_size": PositiveInt | None,
    "data_service": Annotated[str, Field(pattern=r"^grpc(\+local)?://.+:\d+$")] | None,
    "steps_per_epoch": PositiveInt | None,
    "validation_steps": PositiveInt | None,
    "verbose": Literal["auto", 0, 1, 2],
    "evaluate": bool,
    "plots": bool,
    "fine_tune": FineTuneConfig | None,
    "restore_best": bool,
    # None: the task's; strict, so "yes", 1.0 and 0 are refused rather than read as bools
    "precise_bn": StrictBool | Annotated[int, Field(gt=0, strict=True)] | None,
    # {class id or class name: weight}, as fit takes it ("0" from JSON is id 0).
    "class_weight": Literal["balanced"]
    | dict[Annotated[int | str, Field(union_mode="left_to_right")],
           Annotated[float, Field(ge=0)]]
    | list[Annotated[float, Field(ge=0)]] | None,
    "sampling": Literal["balanced"] | None,
    "explain_every": PositiveInt | None,
    "adversarial": AdversarialConfig | None,
}

# The `fit` arguments a recipe's `train:` section does not hold, and where they come from.
SET_ELSEWHERE: dict[str, str] = {
    "model": "the recipe's model section",
    "data": "the recipe's data section",
    "model_kwargs": "model.args",
    "seed": "the recipe's top-level seed",
    "augment": "data.augment (left out: the task's preset)",
    "loss": "the metric_learning section (Python losses otherwise)",
    "metrics": "Python metric objects",
    "callbacks": "Python callback objects",
    "recipe": "the runner, which records the recipe itself",
}


def fit_option_names() -> list[str]:
    """`fit`'s parameter names, in signature order."""
    return list(inspect.signature(fit).parameters)


def signature_defaults() -> dict[str, Any]:
    """`fit`'s defaults by parameter name (parameters without one are left out)."""
    return {name: parameter.default
            for name, parameter in inspect.signature(fit).parameters.items()
            if parameter.default is not inspect.Parameter.empty}


class _TrainBase(_Section):
    """Training options, as in `vk.train.fit` (one field per fit option)."""

    @model_validator(mode="after")
    def _freeze_within_epochs(self) -> _TrainBase:
        fine_tune, epochs = getattr(self, "fine_tune", None), getattr(self, "epochs", None)
        if fine_tune is not None and epochs is not None and \
                fine_tune.freeze_epochs > epochs:  # None: checked at fit
            raise ValueError(f"fine_tune.freeze_epochs={fine_tune.freeze_epochs} is more "
                             f"than epochs={epochs}")
        return self

    def fit_arguments(self) -> dict[str, Any]:
        """Every option as `fit`'s keyword argument of the same name (sections as dicts;
        adversarial settings left unset are left out, so the attack's defaults apply)."""
        arguments = {name: getattr(self, name) for name in type(self).model_fields}
        if self.fine_tune is not None:
            arguments["fine_tune"] = self.fine_tune.model_dump()
        if self.adversarial is not None:
            arguments["adversarial"] = self.adversarial.model_dump(exclude_none=True)
        if isinstance(self.class_weight, list):
            arguments["class_weight"] = list(self.class_weight)
        return arguments


def recipe_options() -> type[_TrainBase]:
    """The `train:` section's schema: one field per `fit` option in `RECIPE_TYPES`, in
    fit's order, with fit's default."""
    defaults = signature_defaults()
    fields = {name: (RECIPE_TYPES[name], defaults[name]) for name in fit_option_names()
              if name in RECIPE_TYPES}
    model = create_model("TrainConfig", __base__=_TrainBase, __module__=__name__, **fields)
    model.__doc__ = _TrainBase.__doc__
    return model


TrainConfig = recipe_options()
