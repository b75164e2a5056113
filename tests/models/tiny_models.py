"""Tiny builds of every registered classification and segmentation model, for sweeps."""

from __future__ import annotations

import inspect
import re

import numpy as np

import visionkit as vk

# Non-square on purpose; AlexNet and ZFNet need at least 63x63 (three 3x3/2 pools).
CLASSIFICATION_SHAPE = (32, 40, 3)
LARGE_STEM_SHAPE = (64, 72, 3)
SEGMENTATION_SHAPE = (32, 64, 3)
NUM_CLASSES = 3


def tiny_shape(name: str) -> tuple[int, int, int]:
    if vk.models.get(name).task == "segmentation":
        return SEGMENTATION_SHAPE
    return LARGE_STEM_SHAPE if name in ("alexnet", "zfnet") else CLASSIFICATION_SHAPE


# The size of builders documented for any input size (padded inside) or none: the
# minimum of the five-stride-2-stage backbones.
ANY_SIZE_HEIGHT = 32


def documented_minimum(name: str) -> int | None:
    """The smallest height and width the builder's docstring states ("at least NxN")."""
    found = re.search(r"input_shape:[^:]*?at least (\d+)x(\d+)",
                      vk.models.get(name).builder.__doc__ or "")
    return int(found.group(1)) if found else None


def minimal_shape(name: str) -> tuple[int, int, int]:
    """The documented minimum height and twice that width (the batch-norm layers of a
    five-stage network then see a 1x2 last map), with three channels."""
    height = documented_minimum(name) or ANY_SIZE_HEIGHT
    return (height, 2 * height, 3)


def tiny_kwargs(name: str) -> dict:
    """Small widths for the families that take them, so sweeps stay fast."""
    entry = vk.models.get(name)
    parameters = inspect.signature(entry.builder).parameters
    if entry.task == "segmentation":
        if name == "unet":
            return {"depth": 2, "filters": 4}
        if name == "segnet":
            return {"width_multiplier": 1 / 16}
        if name == "deeplabv3plus":
            return {"backbone": "resnet18", "width_multiplier": 0.125, "aspp_filters": 8,
                    "low_level_filters": 4}
        kwargs = {"decoder_filters": (8, 8, 8, 8, 8)}
        if "efficientnet" not in name:
            kwargs["width_multiplier"] = 0.35 if "mobilenet" in name else 0.125
        return kwargs
    kwargs = {}
    if "width_multiplier" in parameters:
        kwargs["width_multiplier"] = 0.35 if name.startswith("mobilenet") else 0.125
    if "fc_units" in parameters:
        kwargs["fc_units"] = 16
    if "filters" in parameters:
        kwargs["filters"] = (8, 16)
    if name == "wide_resnet":
        kwargs.update(depth=10, widen_factor=1)
    if name == "densenet_bc":
        kwargs.update(blocks=(1, 2, 2, 1), growth_rate=4)
    return kwargs


def tiny_model(name: str, **extra):
    return vk.models.build(name, tiny_shape(name), NUM_CLASSES, **tiny_kwargs(name), **extra)


def raw_images(shape: tuple, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)
