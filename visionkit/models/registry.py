"""The model registry: one explicit table from names to builder functions.

Builders register themselves with `@register(name, task=...)` in the module that defines
them; `visionkit.models` imports those modules explicitly, so the table is complete once
`visionkit.models` is imported and nothing else runs at import time.

Example:

>>> import visionkit as vk
>>> "resnet18" in vk.models.available("classification")
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from visionkit.models.common import check_num_classes
from visionkit.vocabulary import Registry, _redefinition, did_you_mean, get_task

__all__ = ["register", "get", "available", "build", "ModelEntry"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder: its name, task and the function that builds it."""

    name: str
    task: str
    builder: Callable[..., keras.Model]
    description: str = ""


_REGISTRY: Registry[ModelEntry] = Registry("model")


def register(name: str, task: str, description: str = "") -> Callable:
    """Decorator that registers a model builder under `name` for `task`.

    Registering the same builder again (a re-run notebook cell or `importlib.reload`:
    the same module and qualified name) replaces its entry.

    Raises:
        ValueError: if `name` is already registered to another builder.
        TypeError: if `name` is not a string.
    """

    def decorator(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        held = _REGISTRY.get(name) if isinstance(name, str) else None
        if held is not None and not _redefinition(held.builder, builder):
            raise ValueError(f"A model named {name!r} is already registered "
                             f"({held.builder.__module__}.{held.builder.__qualname__}).")
        doc = description or (builder.__doc__ or "").strip().splitlines()[0:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        _REGISTRY.register(name, ModelEntry(name=name, task=task, builder=builder,
                                            description=text), replace=held is not None)
        return builder

    return decorator


def get(name: str) -> ModelEntry:
    """Returns the registry entry for `name`.

    Raises:
        ValueError: for an unknown name, with close matches and the known names.
    """
    return _REGISTRY.lookup(name)


def available(task: str | None = None) -> list[str]:
    """Sorted names the registry knows, optionally only those of one task."""
    return _REGISTRY.names(lambda entry: task is None or entry.task == task)


def build(name: str, input_shape: tuple[int, ...], num_classes: int | None = None,
          **kwargs: Any) -> keras.Model:
    """Builds the registered model `name`.

    Args:
        name: a name from `available()`.
        input_shape: `(height, width, channels)` of the raw images the model takes.
        num_classes: number of output classes. Required, except for embedding models
            (task "embedding"), which have none (their output is `embedding_dim` wide).
        **kwargs: passed to the builder (`activation`, `weights`, `backbone`, ...).

    Returns:
        A `keras.Model` that takes raw pixels (0..255) and rescales inside.

    Raises:
        ValueError: for an unknown name or invalid arguments.

    Example:

    >>> import visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(32, 32, 3), num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    entry = get(name)
    _check_keywords(entry, kwargs)
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            f"Expected input_shape as (height, width, channels); received {input_shape!r}.")
    if not get_task(entry.task).outputs_are_classes:
        if num_classes is not None:
            raise ValueError(f"Model {name!r} outputs embeddings, not class scores: it takes "
                             f"no num_classes (set embedding_dim instead); received "
                             f"num_classes={num_classes!r}.")
        return entry.builder(input_shape=tuple(input_shape), **kwargs)
    if num_classes is None:
        raise ValueError(f"Model {name!r} needs num_classes; received none.")
    return entry.builder(input_shape=tuple(input_shape),
                         num_classes=check_num_classes(num_classes), **kwargs)


def _check_keywords(entry: ModelEntry, kwargs: dict[str, Any]) -> None:
    """Fails for an argument the builder does not take, naming it (with close matches),
    before `build`'s own checks (a misspelled `num_classes` would read as missing)."""
    parameters = inspect.signature(entry.builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    for key in kwargs:
        if key not in parameters:
            hint = did_you_mean(key, list(parameters))
            raise TypeError(f"{entry.builder.__name__}() got an unexpected keyword argument "
                            f"{key!r}.{hint} It takes {', '.join(parameters)}.")
