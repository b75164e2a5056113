"""Variants of one builder: ResNet-18/34/50, VGG-11/16, the keras.applications wrappers.

A family of builders shares one signature and one wiring function; what differs is a
fixed argument (the depth, the keras.applications family), the default model name and
the docstring. As Keras's applications do (`ResNet50 = ResNet(...)` over one base
builder), `variant` makes each member a thin definition over the family's builder. The
member is an ordinary function of the family's module (generated as `dataclasses`
generates `__init__`), so `help()`, `inspect.signature`, doctest, pickling and Python's
own errors for a wrong argument see exactly a hand-written `def`.

Example:

>>> def _wire(input_shape=(32, 32, 3), name="", *, depth):
...     return f"{name}: depth {depth} at {input_shape}"
>>> tiny8 = variant(_wire, "tiny8", "Tiny-{depth}.", depth=8)
>>> import inspect
>>> str(inspect.signature(tiny8)), tiny8.__doc__
("(input_shape=(32, 32, 3), name='tiny8')", 'Tiny-8.')
>>> tiny8((16, 16, 1))
'tiny8: depth 8 at (16, 16, 1)'
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable
from typing import Any

__all__ = ["compile_builder", "fill_fields", "variant"]


class _Placeholders(dict):
    """`str.format_map` fields that leave unknown `{key}` lines for `fill_docstring`."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def compile_builder(name: str, parameters: list[inspect.Parameter], target: Callable,
                    module_globals: dict[str, Any], fixed: dict[str, Any] | None = None,
                    return_annotation: Any = inspect.Signature.empty) -> Callable:
    """A function `name(<parameters>)` that returns `target(**fixed, <its arguments>)`.

    The function is compiled in the module whose globals are `module_globals`, as
    dataclasses compiles `__init__`, so its `__globals__` and `__module__` are that
    module's (doctest finds its Example there, pickle finds it by name) and Python
    itself reports a missing or unknown argument, as for a hand-written `def`.

    Args:
        name: the function's name.
        parameters: its parameters in order (positional-or-keyword, keyword-only and
            `**kwargs` ones), with their defaults and annotations.
        target: what it calls, with every argument by keyword.
        module_globals: the `__dict__` of the module it belongs to.
        fixed: further keyword arguments for `target`. Defaults to None.
        return_annotation: its return annotation. Defaults to none.

    Returns:
        The function.

    Raises:
        TypeError: for a positional-only or `*args` parameter.
        ValueError: for a `name` or parameter name that is not a Python identifier (only
            identifiers reach the compiled text; defaults and `target` are passed as
            objects, never as source).
    """
    for text in [name, *(parameter.name for parameter in parameters)]:
        if not isinstance(text, str) or not text.isidentifier() or keyword.iskeyword(text):
            raise ValueError(f"Expected a Python identifier as a builder or parameter name; "
                             f"received {text!r}.")
    header, call = [], []
    defaults: dict[str, Any] = {}
    keyword_only = False
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
            raise TypeError(f"Expected parameters without positional-only or *args ones; "
                            f"received {parameter}.")
        if parameter.kind is parameter.VAR_KEYWORD:
            header.append(f"**{parameter.name}")
            call.append(f"**{parameter.name}")
            continue
        if parameter.kind is parameter.KEYWORD_ONLY and not keyword_only:
            header.append("*")
            keyword_only = True
        text = parameter.name
        if parameter.default is not parameter.empty:
            defaults[f"_default_{parameter.name}"] = parameter.default
            text += f"=_default_{parameter.name}"
        header.append(text)
        call.append(f"{parameter.name}={parameter.name}")
    source = (f"def _make({', '.join(['_target', '_fixed', *defaults])}):\n"
              f"    def {name}({', '.join(header)}):\n"
              f"        return _target(**_fixed, {', '.join(call)})\n"
              f"    return {name}\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<builder {name}>", "exec"), module_globals, namespace)  # noqa: S102
    function = namespace["_make"](target, dict(fixed or {}), *defaults.values())
    function.__qualname__ = name
    function.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters
                                if parameter.annotation is not parameter.empty}
    if return_annotation is not inspect.Signature.empty:
        function.__annotations__["return"] = return_annotation
    return function


def fill_fields(doc: str, **fields: Any) -> str:
    """`doc` with `{key}` formatted in for each of `fields`; any other `{key}` is kept."""
    return doc.format_map(_Placeholders(fields))


def variant(base: Callable, name: str, doc: str, doc_fields: dict[str, Any] | None = None,
            **fixed: Any) -> Callable:
    """A builder that calls `base` with `fixed` arguments bound, named `name`.

    Its signature is `base`'s without the `fixed` parameters, with `name`'s default set
    to `name` (when `base` has a `name` parameter); its defaults and annotations are
    `base`'s. Its module is `base`'s, so define `base` beside the variants.

    Args:
        base: the family's builder; the arguments a variant fixes are usually
            keyword-only parameters without default.
        name: the variant's function name and default model name.
        doc: its docstring; `{name}`, each key of `fixed` and of `doc_fields` in it are
            formatted in, any other `{key}` is kept (for `fill_docstring`).
        doc_fields: further values for `doc`. Defaults to None.
        **fixed: the arguments the variant passes to `base`.

    Returns:
        The variant function.

    Raises:
        TypeError: for a `fixed` name that `base` does not take, or a `base` with
            positional-only or `*args` parameters.
    """
    signature = inspect.signature(base)
    unknown = sorted(set(fixed) - set(signature.parameters))
    if unknown:
        raise TypeError(f"{base.__qualname__} takes no {unknown}; received fixed={fixed!r}.")
    parameters = [parameter.replace(default=name) if parameter.name == "name" else parameter
                  for parameter in signature.parameters.values() if parameter.name not in fixed]
    function = compile_builder(name, parameters, base, base.__globals__, fixed,
                               signature.return_annotation)
    function.__doc__ = fill_fields(doc, name=name, **fixed, **(doc_fields or {}))
    return function
