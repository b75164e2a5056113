"""Pieces every builder shares: the raw-pixel input and the classifier output."""

from __future__ import annotations

import numbers
from typing import Any

import keras

__all__ = ["raw_image_input", "rescale", "classifier_output", "check_activation", "positive_ints",
           "check_num_classes", "PIXEL_SCALE"]

# Models take raw pixels in 0..255 and rescale inside (DESIGN.md, principle 1).
PIXEL_SCALE = 1.0 / 255.0

_OUTPUT_ACTIVATIONS = (None, "softmax", "sigmoid")


def raw_image_input(input_shape: tuple[int, ...], name: str = "images") -> keras.KerasTensor:
    """The model's input: raw pixels 0..255 (float32; uint8 is cast on the way in)."""
    return keras.Input(shape=tuple(input_shape), name=name)


def rescale(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """Rescales raw 0..255 pixels to 0..1 inside the graph."""
    return keras.layers.Rescaling(PIXEL_SCALE, name="rescale")(inputs)


def check_activation(activation: str | None) -> str | None:
    """Validates a builder's final `activation` argument."""
    if activation not in _OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"Expected activation to be one of {_OUTPUT_ACTIVATIONS} (None for logits); "
            f"received activation={activation!r}.")
    return activation


def classifier_output(features: keras.KerasTensor, num_classes: int,
                      activation: str | None = "softmax",
                      dropout: float = 0.0) -> keras.KerasTensor:
    """A dense layer over class scores named "predictions", kept in float32.

    The output layer is float32 even under a mixed-precision policy, so softmax and the
    loss stay numerically stable.
    """
    check_activation(activation)
    num_classes = check_num_classes(num_classes, activation)
    if dropout:
        features = keras.layers.Dropout(dropout, name="head_dropout")(features)
    return keras.layers.Dense(num_classes, activation=activation, dtype="float32",
                              name="predictions")(features)


def check_num_classes(num_classes: Any, activation: str | None = None) -> int:
    """A builder's `num_classes` as an int, checked: an integer (a float only when whole,
    e.g. 3.0) of at least 1; not a bool or a string; not 1 under a softmax (its output
    would always be 1.0).

    Raises:
        ValueError: naming `num_classes` and the value received.
    """
    whole = not isinstance(num_classes, bool) and (
        isinstance(num_classes, numbers.Integral)
        or (isinstance(num_classes, numbers.Real) and float(num_classes).is_integer()))
    if not whole or int(num_classes) < 1:
        raise ValueError(f"Expected num_classes as an integer >= 1; received "
                         f"num_classes={num_classes!r}.")
    if int(num_classes) == 1 and activation == "softmax":
        raise ValueError("Received num_classes=1 with activation='softmax': a softmax over "
                         "one class is always 1.0. For one yes/no score use "
                         "activation='sigmoid' (or None for a logit); for classes, "
                         "num_classes=2 or more.")
    return int(num_classes)


def positive_ints(**values: Any) -> tuple[int, ...]:
    """A layer's sizes and counts as ints, each checked to be at least 1.

    Raises:
        ValueError: naming every value when one is below 1.
    """
    if any(int(value) < 1 for value in values.values()):
        expected = " and ".join(f"{name} >= 1" for name in values)
        received = ", ".join(f"{name}={value!r}" for name, value in values.items())
        raise ValueError(f"Expected {expected}; received {received}.")
    return tuple(int(value) for value in values.values())
