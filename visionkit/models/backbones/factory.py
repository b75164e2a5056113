"""`build_backbone` and `available_backbones`: every backbone speaks P1..P5.

A backbone is a `keras.Model` from raw 0..255 pixels to a dict `{"P1": ..., "P5": ...}`
of feature maps 2^n times smaller than the input (rounded up for sizes that are not
multiples of 32), so any classifier, segmentation decoder or detection head can sit on
any backbone (DESIGN.md, principle 7). Each backbone owns its family's preprocessing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from visionkit.models.backbones.applications import (
    APPLICATION_FAMILIES,
    APPLICATION_MIN_SIZE,
    application_features,
)
from visionkit.models.backbones.blocks import check_width_multiplier
from visionkit.models.backbones.densenet import densenet_bc_features
from visionkit.models.backbones.googlenet import googlenet_features
from visionkit.models.backbones.preact_resnet import preact_resnet_features
from visionkit.models.backbones.resnet import resnet_features
from visionkit.models.backbones.vgg import vgg_features
from visionkit.models.backbones.weights import (
    check_weights,
    is_legacy_weights,
    is_pretrained,
    load_weights,
)
from visionkit.models.common import raw_image_input
from visionkit.models.pretrained import fetch, find_pretrained, is_published_file
from visionkit.vocabulary import Registry

__all__ = ["BACKBONE_MIN_SIZE", "available_backbones", "build_backbone", "backbone_features"]

# Five stride-2 stages: below 32 pixels P5 would be empty.
BACKBONE_MIN_SIZE = 32


@dataclass(frozen=True)
class _BackboneEntry:
    wire: Callable[..., dict[str, keras.KerasTensor]]
    options: tuple[str, ...]
    application: bool = False


def _own(wire: Callable[..., dict], **fixed: Any) -> Callable[..., dict]:
    def wired(inputs: keras.KerasTensor, **options: Any) -> dict[str, keras.KerasTensor]:
        return wire(inputs, **fixed, **options)
    return wired


def _application(family: str) -> Callable[..., dict]:
    def wired(inputs: keras.KerasTensor, **options: Any) -> dict[str, keras.KerasTensor]:
        return application_features(inputs, family, **options)
    return wired


# Options of the own residual families (`attention`, `stochastic_depth`: see
# `visionkit.models.backbones.residual_options`).
_RESIDUAL_OPTIONS = ("width_multiplier", "attention", "stochastic_depth")

_BACKBONES: Registry[_BackboneEntry] = Registry("backbone", entries={
    "vgg11": _BackboneEntry(_own(vgg_features, depth=11), ("width_multiplier", "batch_norm")),
    "vgg16": _BackboneEntry(_own(vgg_features, depth=16), ("width_multiplier", "batch_norm")),
    "resnet18": _BackboneEntry(_own(resnet_features, depth=18), _RESIDUAL_OPTIONS),
    "resnet34": _BackboneEntry(_own(resnet_features, depth=34), _RESIDUAL_OPTIONS),
    "resnet50": _BackboneEntry(_own(resnet_features, depth=50), _RESIDUAL_OPTIONS),
    **{f"preact_resnet{depth}": _BackboneEntry(
        _own(preact_resnet_features, depth=depth), _RESIDUAL_OPTIONS) for depth in (18, 34, 50)},
    "densenet_bc": _BackboneEntry(densenet_bc_features, ("blocks", "growth_rate", "compression")),
    "googlenet": _BackboneEntry(googlenet_features, ("width_multiplier",)),
    **{family: _BackboneEntry(
        _application(family),
        ("width_multiplier",) if APPLICATION_FAMILIES[family].width_argument else (),
        application=True) for family in APPLICATION_FAMILIES},
})


def available_backbones() -> list[str]:
    """Sorted names `build_backbone` accepts.

    Example:

    >>> "resnet50" in available_backbones()
    True
    """
    return _BACKBONES.names()


def _entry(name: str) -> _BackboneEntry:
    return _BACKBONES.lookup(name)


def _check_input_shape(name: str, input_shape: tuple, application: bool) -> tuple:
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"Expected input_shape as (height, width, channels); received "
                         f"input_shape={input_shape!r}.")
    height, width, channels = shape
    minimum = APPLICATION_MIN_SIZE if application else BACKBONE_MIN_SIZE
    for size in (height, width):
        if size is not None and size < minimum:
            raise ValueError(f"Backbone {name!r} needs images of at least {minimum}x{minimum} "
                             f"pixels (five stride-2 stages); received input_shape={shape!r}.")
    if application and channels != 3:
        raise ValueError(f"Backbone {name!r} (keras.applications) takes RGB images with 3 "
                         f"channels, as its ImageNet weights do; received "
                         f"input_shape={shape!r} (load grayscale images as RGB).")
    return shape


def _check_options(name: str, entry: _BackboneEntry, options: dict[str, Any]) -> dict:
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        accepted = ", ".join(entry.options) or "none"
        raise ValueError(f"Backbone {name!r} does not take option(s) {', '.join(unknown)}; "
                         f"it accepts: {accepted}. Received: {options!r}.")
    if "width_multiplier" in options:
        check_width_multiplier(options["width_multiplier"])
    return options


def _pretrained_file(name: str, entry: _BackboneEntry, dataset: str, shape: tuple,
                     options: dict[str, Any]) -> str:
    """Fetches (or finds in the cache) the pretrained file of `name` for `dataset`."""
    if not entry.application:
        raise ValueError(
            f"Backbone {name!r} is one of visionkit's own families, trained from scratch: "
            f"no {dataset!r} weights exist for it. keras.applications backbones have "
            f"ImageNet weights: {', '.join(sorted(APPLICATION_FAMILIES))}. Received "
            f"weights={dataset!r}.")
    found = find_pretrained(name, dataset, options.get("width_multiplier", 1.0), shape)
    return fetch(found)


def _resolve_weights(name: str, entry: _BackboneEntry, weights: Any, shape: tuple,
                     options: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """`(legacy .h5 path, .weights.h5 path, is Keras's published ImageNet file)`."""
    path = check_weights(weights, allow_legacy=entry.application, allow_pretrained=True)
    if path is None:
        return None, None, False
    if is_pretrained(path):
        return _pretrained_file(name, entry, path, shape, options), None, True
    if is_legacy_weights(path):
        return path, None, entry.application and is_published_file(path, name, "imagenet")
    return None, path, False


def backbone_features(name: str, inputs: keras.KerasTensor,
                      weights: str | os.PathLike | None = None, **options: Any
                      ) -> dict[str, keras.KerasTensor]:
    """Wires backbone `name` onto `inputs` in the caller's graph and returns the P-dict.

    This is the building block for heads that want one flat functional graph (every
    backbone layer addressable by name). Pretrained weights ("imagenet") and legacy
    keras.applications `.h5` files can be loaded this way; `.weights.h5` files belong to
    a whole model (see `build_backbone`).

    Raises:
        ValueError: for an unknown name, option or input shape, or weights that do not
            apply.
        WeightsUnavailableError: when "imagenet" weights are neither cached nor fetchable.
    """
    entry = _entry(name)
    shape = _check_input_shape(name, tuple(inputs.shape[1:]), entry.application)
    options = _check_options(name, entry, options)
    legacy, path, published = _resolve_weights(name, entry, weights, shape, options)
    if path is not None:
        raise ValueError("backbone_features loads only legacy keras.applications '.h5' "
                         f"files or 'imagenet'; load a '.weights.h5' file with "
                         f"build_backbone. Received weights={path!r}.")
    if entry.application:
        options["legacy_weights"] = legacy
        options["published_imagenet"] = published
    return entry.wire(inputs, **options)


def build_backbone(name: str, input_shape: tuple[int | None, int | None, int],
                   weights: str | os.PathLike | None = None, **options: Any) -> keras.Model:
    """Builds backbone `name`: raw pixels in, the P1..P5 feature dict out.

    Own families (`vgg11`, `vgg16`, `resnet18`, `resnet34`, `resnet50`,
    `preact_resnet18/34/50`, `googlenet`, `densenet_bc`) rescale pixels to 0..1 inside; keras.applications families (`mobilenet_v2`, `mobilenet_v3_small`,
    `mobilenet_v3_large`, `efficientnet_b0`, `efficientnet_b1`, `densenet121`,
    `resnet50_v2`) apply the preprocessing they were trained with, so the same raw
    images feed every backbone.

    Args:
        name: a name from `available_backbones()`.
        input_shape: `(height, width, channels)` of raw 0..255 images; height and width
            at least 32 (or None for any size). keras.applications families need 3
            channels.
        weights: None (random initialisation), "imagenet" (keras.applications families:
            the no-top file Keras publishes for this width and size, from Keras's cache,
            `VISIONKIT_WEIGHTS_MIRROR` or the origin; see `visionkit.models.pretrained`),
            or the path of a local weights file: a `.weights.h5` file saved from a
            backbone built with the same arguments (`backbone.save_weights(path)`), or,
            for keras.applications families, a no-top `.h5` file. Defaults to None.
        **options: family options: `width_multiplier` (float, scales filters; MobileNet's
            `alpha`; not for EfficientNet, DenseNet, ResNet50V2); for VGG, `batch_norm`
            (bool); for the own ResNets, `attention` and `stochastic_depth`; for
            `densenet_bc`, `blocks`, `growth_rate` and `compression`.

    Input shape:
        `[B, H, W, C]` raw pixels 0..255 (float32, or uint8 cast on the way in).

    Output shape:
        A dict `{"P1": [B, H/2, W/2, C1], ..., "P5": [B, H/32, W/32, C5]}`.

    Returns:
        A `keras.Model` named `"{name}_backbone"`.

    Raises:
        ValueError: for an unknown name (with close matches), an unknown option, an input
            too small, "imagenet" for an own family or an unpublished width, or a weights
            file that is missing or does not fit (naming the likely cause).
        WeightsUnavailableError: when "imagenet" weights are neither cached nor
            fetchable (the message names the file and where to put it).
        WeightsHashError: when a fetched file does not have the published hash.

    Example:

    >>> backbone = build_backbone("resnet18", (64, 96, 3), width_multiplier=0.25)
    >>> {level: tuple(t.shape[1:3]) for level, t in backbone.output.items()}["P5"]
    (2, 3)
    """
    entry = _entry(name)
    shape = _check_input_shape(name, input_shape, entry.application)
    check_weights(weights, allow_legacy=entry.application, allow_pretrained=True)
    inputs = raw_image_input(shape)
    if is_pretrained(weights) or (weights is not None and is_legacy_weights(os.fspath(weights))):
        features = backbone_features(name, inputs, weights=weights, **options)
        return keras.Model(inputs, features, name=f"{name}_backbone")
    features = backbone_features(name, inputs, **options)
    model = keras.Model(inputs, features, name=f"{name}_backbone")
    return load_weights(model, weights)
