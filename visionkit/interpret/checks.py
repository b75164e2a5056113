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

import inspect
import math
import numbers
import os
import warnings
from typing import Any

import numpy as np

from visionkit.errors import VisionkitError

__all__ = ["ArgumentError", "PixelRangeWarning", "check_finite_result", "check_float",
           "check_int", "check_ids", "warn_scaled_pixels"]

# visionkit's own source folder: the frames of its functions, walked past to name the
# function the user called and to point the warning at the user's line.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# The user's call (frame, code, instruction) that last got a PixelRangeWarning, so one
# call whose methods check the same images again (compare, report) warns once, and a
# loop calling from one line warns on its first pass (as Python's default filter would).
_last_warned_call: list = [None]


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


class PixelRangeWarning(UserWarning):
    """Images given to an interpretation function look scaled to 0..1 or -1..1.

    visionkit models take raw 0..255 pixels and rescale them inside, so on images
    divided by 255 (or brought to -1..1 by a `preprocess_input`) their maps explain a
    nearly black picture. For a model of your own
    that does take 0..1 inputs, silence it with
    `warnings.filterwarnings("ignore", category=PixelRangeWarning)`.
    """


def warn_scaled_pixels(images: Any, argument: str = "images", model_name: str = "",
                       consequence: str = "") -> None:
    """Warns (a `PixelRangeWarning`) when float `images` all lie in [0, 1] with some above
    0, or all in [-1, 1] with some below 0: images scaled to 0..1 (`x / 255`) or to -1..1
    (`(x / 127.5) - 1`, what `keras.applications` `preprocess_input` does for MobileNet,
    Inception, Xception...) handed to a model that expects raw 0..255 pixels.

    Every interpretation function that takes images calls it (through `check_images`).
    The warning names the function the user called, the range and largest value
    received, and points at the user's line; a call whose methods check the same images
    again (`compare`, `report`) warns once, and so does a loop calling from one line.
    Integer images (uint8: a 0/1 mask is no scaled photo) and all-zero images do not
    warn; neither do raw pixels with a value outside [-1, 1]. A raw float image whose
    pixels are all at most 1 (nearly black) cannot be told from a scaled one and warns.

    Args:
        images: NumPy array or tensor of pixels.
        argument: the argument's name, for the message. Defaults to "images".
        model_name: the model's name, for the message. Defaults to "" (the model).
        consequence: what the scaling does to the result, appended to the message.
    """
    array = np.asarray(images)
    if array.dtype.kind != "f" or array.size == 0:
        return
    low, high = float(array.min()), float(array.max())
    if low < 0.0 and low >= -1.0 and high <= 1.0:
        scale, fix = "-1..1", f"({argument} + 1) * 127.5"
    elif low >= 0.0 and 0.0 < high <= 1.0:
        scale, fix = "0..1", f"{argument} * 255"
    else:  # raw pixels, or NaN (min and max are NaN; the adapter reports those)
        return
    frame, entry, stacklevel = inspect.currentframe(), "visionkit", 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        entry, frame, stacklevel = frame.f_code.co_name, frame.f_back, stacklevel + 1
    call = None if frame is None else (id(frame), id(frame.f_code), frame.f_lasti)
    if call is not None and call == _last_warned_call[0]:
        return
    _last_warned_call[0] = call
    model = f"model {model_name!r} expects" if model_name else "visionkit's models expect"
    del frame  # no reference cycle through the stack
    warnings.warn(f"{entry}: the values of {argument} lie in [{low:g}, {high:g}] (max "
                  f"{high:g}): they look scaled to {scale}, but {model} raw 0..255 "
                  f"pixels (visionkit models rescale their input themselves)"
                  f"{consequence}; pass {fix}.", PixelRangeWarning,
                  stacklevel=stacklevel)


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
