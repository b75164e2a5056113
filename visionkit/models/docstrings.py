"""Docstring fragments the model builders share, formatted in as Keras's applications do.

A family of builders (ResNet-18/34/50, the keras.applications classifiers, ...) shares
most of its Args, shapes and Raises; the text is written once, here or beside the
family, and `fill_docstring` puts it in place of a `{key}` line, so `help()` and the
documentation show each builder's full docstring.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TypeVar

__all__ = ["fill_docstring", "ACTIVATION_AND_WEIGHTS_ARGS", "CLASSIFIER_SHAPES", "SEGMENTER_SHAPES"]

_Function = TypeVar("_Function", bound=Callable)

# The Args `activation` and `weights` of a builder without pretrained weights.
ACTIVATION_AND_WEIGHTS_ARGS = """\
activation: final activation, "softmax" or None for logits. Defaults to "softmax".
weights: None or a local `.weights.h5` file for the whole model. Defaults to None.
"""

# The shapes and return value of a classifier builder's docstring (`fill_docstring`).
CLASSIFIER_SHAPES = """
Input shape:
    `[B, H, W, C]` raw pixels 0..255.

Output shape:
    `[B, num_classes]`.

Returns:
    A `keras.Model`.
"""

# The same for a segmentation builder: one map of class scores per pixel.
SEGMENTER_SHAPES = """
Input shape:
    `[B, H, W, C]` raw pixels 0..255.

Output shape:
    `[B, H, W, num_classes]`.

Returns:
    A `keras.Model`.
"""


def fill_docstring(**fragments: str) -> Callable[[_Function], _Function]:
    """A decorator that puts shared docstring fragments into a builder's docstring.

    Builders of one family share most of their Args, shapes and Raises; as Keras's
    applications do, the shared text is written once and formatted in. A line of the
    docstring holding only `{key}` is replaced by `fragments[key]` (dedented, then
    indented as that line; an empty fragment removes the line); `{name}` in a fragment
    becomes the function's name.

    Args:
        **fragments: text per placeholder key.

    Returns:
        The decorator; it sets the function's `__doc__` and returns the function.

    Raises:
        ValueError: if the docstring lacks a `{key}` line for a fragment.

    Example:

    >>> @fill_docstring(args='name: model name. Defaults to "{name}".')
    ... def tiny(name="tiny"):
    ...     '''A tiny model.
    ...
    ...     Args:
    ...         {args}
    ...     '''
    >>> print(tiny.__doc__.splitlines()[-2].strip())
    name: model name. Defaults to "tiny".
    """
    def decorate(function: _Function) -> _Function:
        if function.__doc__ is None:  # python -OO strips docstrings
            return function
        lines = function.__doc__.split("\n")
        for key, fragment in fragments.items():
            marker = "{" + key + "}"
            places = [index for index, line in enumerate(lines) if line.strip() == marker]
            if not places:
                raise ValueError(f"Expected a line {marker!r} in the docstring of "
                                 f"{function.__name__}; received none.")
            text = textwrap.dedent(fragment).strip("\n").replace("{name}", function.__name__)
            for index in reversed(places):
                indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
                lines[index: index + 1] = [indent + line if line else line
                                           for line in (text.split("\n") if text else [])]
        function.__doc__ = "\n".join(lines)
        return function

    return decorate
