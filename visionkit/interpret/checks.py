"""Argument checks shared by the interpretation functions.

Every interpretation function checks its arguments before anything reaches TensorFlow, so
a bad value is an `ArgumentError` that names the argument, the valid range and the value
received, never NaN in a result or a raw TensorFlow message. `ArgumentError` is a
`ValueError`, so `except ValueError` keeps working.

Example:

>>> check_int(4, "stride", minimum=1)
4
>>> try:
...     check_int(0, "stride", minimum=1)
... except ArgumentError as error:
...     print(error.argument, "|", error)
stride | Expected stride to be an integer >= 1; received stride=0.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from visionkit.errors import VisionkitError

__all__ = ["ArgumentError", "check_finite_result", "check_float", "check_int", "check_ids"]


class ArgumentError(VisionkitError, ValueError):
    """An interpretation argument out of its valid range.

    Args:
        argument: the name of the argument, as the function spells it.
        message: what was expected and what was received.

    Attributes:
        argument: the argument's name.
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.argument, str(self)))


def _range_text(minimum, maximum, above: bool = False) -> str:
    low = None if minimum is None else (f"> {minimum}" if above else f">= {minimum}")
    if maximum is None:
        return low or ""
    return f"in [{minimum}, {maximum}]" if low else f"<= {maximum}"


def check_int(value: Any, argument: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """`value` as an int in `[minimum, maximum]` (bools and fractions refused).

    Raises:
        ArgumentError: naming `argument` and the valid range.
    """
    valid = (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)))
    if not valid and isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        valid = math.isfinite(value) and float(value).is_integer()
    if (not valid or (minimum is not None and value < minimum) or
            (maximum is not None and value > maximum)):
        raise ArgumentError(argument, f"Expected {argument} to be an integer "
                            f"{_range_text(minimum, maximum)}; received {argument}={value!r}.")
    return int(value)


def check_float(value: Any, argument: str, minimum: float | None = None,
                maximum: float | None = None, above: bool = False) -> float:
    """`value` as a finite float in `[minimum, maximum]` (`(minimum, ...` with `above`).

    Raises:
        ArgumentError: naming `argument` and the valid range.
    """
    valid = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    valid = valid and math.isfinite(value)
    if valid and minimum is not None:
        valid = value > minimum if above else value >= minimum
    if valid and maximum is not None:
        valid = value <= maximum
    if not valid:
        text = _range_text(minimum, maximum, above)
        raise ArgumentError(argument, f"Expected {argument} to be a finite number"
                            f"{' ' + text if text else ''}; received {argument}={value!r}.")
    return float(value)


def check_ids(values: Any, argument: str, count: int, what: str, where: str = "") -> np.ndarray:
    """Integer ids in `[0, count - 1]` (one int or a sequence) as int32 `[N]`.

    Raises:
        ArgumentError: for non-integers, an empty list or ids out of range.
    """
    try:
        array = np.atleast_1d(np.asarray(values))
    except (TypeError, ValueError):
        array = np.asarray([None])
    integral = array.dtype.kind in "iu" or (
        array.dtype.kind == "f" and np.all(np.isfinite(array)) and
        np.all(np.mod(array, 1) == 0))
    if (array.ndim != 1 or array.size == 0 or not integral or array.min() < 0 or
            array.max() >= count):
        raise ArgumentError(argument, f"Expected {what} ids in [0, {count - 1}]{where}; "
                            f"received {argument}={values!r}.")
    return array.astype(np.int32)


def check_finite_result(array: np.ndarray, method: str) -> np.ndarray:
    """Returns `array` when every value is finite, else raises naming the images.

    A model whose scores or gradients overflow (inputs far outside its range, a layer
    dividing by zero) would otherwise hand NaN or infinity back as a map.

    Raises:
        ArgumentError: naming `images`.
    """
    values = np.asarray(array)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.isfinite(values).sum())
        raise ArgumentError("images", f"{method} gave {bad} non-finite values: the model's "
                            "outputs or gradients overflow on these images. Expected images "
                            "in the range the model was trained on (visionkit models take "
                            "raw pixels 0..255).")
    return array


def refuse_foreign_options(options: dict[str, tuple[Any, Any]], parameterization: str,
                           other: str) -> None:
    """Names the first option, given away from its default, that belongs to `other`.

    Args:
        options: `{name: (value, default)}` of the options `parameterization` ignores.
        parameterization: the parameterization in use ("pixel" or "fourier").
        other: the one the options belong to.

    Raises:
        ArgumentError: naming the option.
    """
    for argument, (value, default) in options.items():
        # `is not None` first: a value may be an array (decorrelate's colour matrix)
        if (value is not None) if default is None else value != default:
            raise ArgumentError(argument, f"{argument} applies to parameterization="
                                f"{other!r} only; received {argument}={value!r} with "
                                f"parameterization={parameterization!r}.")
