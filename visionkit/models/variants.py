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
from collections.abc import Callable
from typing import Any

__all__ = ["variant"]


class _Placeholders(dict):
    """`str.format_map` fields that leave unknown `{key}` lines for `fill_docstring`."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


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
    parameters, header, call = [], [], []
    defaults: dict[str, Any] = {}
    keyword_only = False
    for parameter in signature.parameters.values():
        if parameter.name in fixed:
            continue
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
            raise TypeError(f"Expected {base.__qualname__} without positional-only or *args "
                            f"parameters; received {parameter}.")
        if parameter.name == "name":
            parameter = parameter.replace(default=name)
        parameters.append(parameter)
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
    # The function is compiled in `base`'s module, as dataclasses compiles __init__, so
    # its __globals__ and __module__ are that module's (doctest finds its Example).
    source = (f"def _make({', '.join(['_base', '_fixed', *defaults])}):\n"
              f"    def {name}({', '.join(header)}):\n"
              f"        return _base(**_fixed, {', '.join(call)})\n"
              f"    return {name}\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<variant {name} of {base.__qualname__}>", "exec"),  # noqa: S102
         base.__globals__, namespace)
    function = namespace["_make"](base, dict(fixed), *defaults.values())
    function.__qualname__ = name
    function.__annotations__ = {key: value for key, value in base.__annotations__.items()
                                if key not in fixed}
    fields = _Placeholders(name=name, **fixed, **(doc_fields or {}))
    function.__doc__ = doc.format_map(fields)
    return function
