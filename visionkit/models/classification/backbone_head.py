"""Pieces shared by the classifiers built on a backbone."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import keras

from visionkit.models.backbones import build_backbone
from visionkit.models.backbones.blocks import check_width_multiplier
from visionkit.models.backbones.factory import BACKBONE_MIN_SIZE
from visionkit.models.backbones.weights import (
    check_weights,
    copy_weights_by_name,
    is_pretrained,
    load_weights,
)
from visionkit.models.common import (
    check_activation,
    check_num_classes,
    classifier_output,
    raw_image_input,
)
from visionkit.models.docstrings import ACTIVATION_AND_WEIGHTS_ARGS, fill_docstring
from visionkit.models.variants import compile_builder, fill_fields

__all__ = ["application_classifier", "check_image_size", "classifier", "inline_classifier",
           "load_backbone_weights", "own_classifier"]


def check_image_size(model_name: str, input_shape: tuple, minimum: int) -> tuple:
    """Validates `(height, width, channels)` with height and width at least `minimum`."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(size is None or int(size) < 1 for size in shape):
        raise ValueError(f"Expected input_shape as (height, width, channels) of positive "
                         f"integers; received input_shape={input_shape!r}.")
    if min(shape[:2]) < minimum:
        raise ValueError(f"{model_name} needs images of at least {minimum}x{minimum} pixels; "
                         f"received input_shape={shape!r}.")
    return shape


def load_backbone_weights(model: keras.Model, backbone_name: str, input_shape: tuple,
                          backbone_weights: str | os.PathLike | None, **options) -> None:
    """Loads a backbone `.weights.h5` file into a classifier wired by the same function.

    Builds `build_backbone(backbone_name, input_shape, weights=backbone_weights,
    **options)` and copies its weights layer by layer (matched by name) into `model`.
    """
    if check_weights(backbone_weights, argument="backbone_weights", allow_legacy=True,
                     allow_pretrained=True) is None:
        return
    backbone = build_backbone(backbone_name, input_shape, weights=backbone_weights, **options)
    copy_weights_by_name(backbone, model)


def inline_classifier(name: str, backbone_name: str, input_shape: tuple,
                      features: Callable[[keras.KerasTensor], dict], num_classes: int,
                      activation: str | None, dropout: float,
                      weights: str | os.PathLike | None,
                      backbone_weights: str | os.PathLike | None, **backbone_options
                      ) -> keras.Model:
    """A classifier on an own backbone's trunk wired inline: P5 -> average pool -> dense.

    `features(inputs)` wires the trunk with the backbone's own function, so the model is
    one flat graph whose layers carry the backbone's names: `backbone_weights` (a file
    saved from `build_backbone(backbone_name, input_shape, **backbone_options)`) are
    copied in by name, then `weights` load into the whole model. The head is global
    average pooling ("avg_pool"), `dropout` and the dense "predictions" layer.

    Raises:
        ValueError: for a bad `activation`, `weights` or `width_multiplier` (in
            `backbone_options`), or an input smaller than the backbones' minimum.
    """
    def wire(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
             **options: Any) -> keras.KerasTensor:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features(inputs)["P5"])
        return classifier_output(x, num_classes, activation, dropout)

    width = {key: value for key, value in backbone_options.items() if key == "width_multiplier"}
    return own_classifier(wire, BACKBONE_MIN_SIZE, input_shape, num_classes, activation,
                          weights, name, backbone=(backbone_name, backbone_weights,
                                                   backbone_options), **width)


def application_classifier(family: str, input_shape: tuple, num_classes: int,
                           width_multiplier: float | None, dropout: float,
                           activation: str | None, weights: str | os.PathLike | None,
                           backbone_weights: str | os.PathLike | None, name: str
                           ) -> keras.Model:
    """The usual transfer-learning model: backbone -> global average pool -> dropout -> dense.

    The backbone is a nested model named `"{family}_backbone"`; freeze it for transfer
    learning with `model.get_layer("{family}_backbone").trainable = False` (or train
    with `fit(..., fine_tune=...)`). `weights="imagenet"` means ImageNet weights in the
    backbone and a new, randomly initialised head for `num_classes` (the usual start of
    transfer learning); it is the same as `backbone_weights="imagenet"`.
    """
    check_activation(activation)
    num_classes = check_num_classes(num_classes, activation)
    if is_pretrained(weights):
        if backbone_weights is not None:
            raise ValueError(f"Give pretrained weights once: weights={weights!r} already sets "
                             f"the backbone's; received backbone_weights={backbone_weights!r}.")
        weights, backbone_weights = None, weights
    check_weights(weights)
    check_weights(backbone_weights, allow_legacy=True, argument="backbone_weights",
                  allow_pretrained=True)
    options = {}
    if width_multiplier is not None:
        options["width_multiplier"] = check_width_multiplier(width_multiplier)
    backbone = build_backbone(family, input_shape, weights=backbone_weights, **options)
    inputs = raw_image_input(input_shape)
    features = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features["P5"])
    outputs = classifier_output(x, num_classes, activation, dropout)
    return load_weights(keras.Model(inputs, outputs, name=name), weights)


def own_classifier(wire: Callable[..., Any], minimum: int, input_shape: tuple,
                   num_classes: int, activation: str | None,
                   weights: str | os.PathLike | None, name: str,
                   backbone: tuple[str, str | os.PathLike | None, dict] | None = None,
                   **options: Any) -> keras.Model:
    """A classifier wired by `wire(inputs, num_classes, activation, **options)`.

    Validates the arguments every own classifier takes (`activation`, `weights`, a
    `width_multiplier` among `options`, an input of at least `minimum` pixels), wires
    the model onto a raw-pixel input and loads `weights` into it. With `backbone`
    `(backbone name, backbone_weights, backbone options)`, for a model wired with an own
    backbone's function, the backbone's weights are copied in first
    (`load_backbone_weights`).

    Raises:
        ValueError: for a bad `activation`, `weights` or `width_multiplier`, or an
            input smaller than `minimum`x`minimum`.
    """
    check_activation(activation)
    num_classes = check_num_classes(num_classes, activation)
    check_weights(weights)
    if "width_multiplier" in options:
        check_width_multiplier(options["width_multiplier"])
    shape = check_image_size(name, input_shape, minimum)
    inputs = raw_image_input(shape)
    outputs = wire(inputs, num_classes, activation, **options)
    model = keras.Model(inputs, outputs, name=name)
    if backbone is not None:
        backbone_name, backbone_weights, backbone_options = backbone
        load_backbone_weights(model, backbone_name, shape, backbone_weights, **backbone_options)
    return load_weights(model, weights)


# The Args every builder made by `classifier` shares, before and after its own.
_IMAGE_ARGS = """
input_shape: `(height, width, channels)` of raw 0..255 images, at least {minimum}x{minimum}.
    Defaults to {input_shape}.
num_classes: number of classes. Defaults to {num_classes}.
"""
_OUTPUT_ARGS = ACTIVATION_AND_WEIGHTS_ARGS + 'name: model name. Defaults to "{name}".\n'


def classifier(minimum: int, input_shape: tuple[int, int, int] = (224, 224, 3),
               num_classes: int = 1000) -> Callable[[Callable], Callable[..., keras.Model]]:
    """A decorator that makes a wiring function into a classifier builder.

    The decorated `wire(inputs, num_classes, activation, **options)` wires the layers
    from the raw-pixel input to the class scores; the builder it becomes takes
    `input_shape` and `num_classes` first, then `wire`'s own options, then
    `activation`, `weights` and `name`, and builds it with `own_classifier`. In
    `wire`'s docstring, the lines `{image_args}` and `{output_args}` become those
    arguments' descriptions.

    Args:
        minimum: the smallest height and width the builder accepts, in pixels.
        input_shape: the default input shape. Defaults to (224, 224, 3).
        num_classes: the default number of classes. Defaults to 1000.

    Returns:
        The decorator; the builder has `wire`'s name and module.
    """
    def decorate(wire: Callable) -> Callable[..., keras.Model]:
        keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
        own = list(inspect.signature(wire).parameters.values())[3:]
        parameters = [
            inspect.Parameter("input_shape", keyword, default=input_shape,
                              annotation="tuple[int, int, int]"),
            inspect.Parameter("num_classes", keyword, default=num_classes, annotation="int"),
            *own,
            inspect.Parameter("activation", keyword, default="softmax", annotation="str | None"),
            inspect.Parameter("weights", keyword, default=None,
                              annotation="str | os.PathLike | None"),
            inspect.Parameter("name", keyword, default=wire.__name__, annotation="str"),
        ]
        builder = compile_builder(wire.__name__, parameters, own_classifier, wire.__globals__,
                                  {"wire": wire, "minimum": minimum}, "keras.Model")
        builder.__doc__ = wire.__doc__
        fields = {"minimum": minimum, "input_shape": input_shape, "num_classes": num_classes}
        return fill_docstring(image_args=fill_fields(_IMAGE_ARGS, **fields),
                              output_args=_OUTPUT_ARGS)(builder)

    return decorate
