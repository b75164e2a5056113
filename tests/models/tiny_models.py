"""The smallest input each registered model documents, for the size sweeps (tiny builds,
shapes and images come from `visionkit.testing`)."""

from __future__ import annotations

import re

import visionkit as vk

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
