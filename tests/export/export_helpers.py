"""Helpers of the export tests (a module of its own: test files import it, not conftest)."""

from __future__ import annotations

import hashlib
import os

import numpy as np

import visionkit as vk

IMAGE_SIZE = (16, 24)  # non-square on purpose: height != width catches swapped axes
CLASS_NAMES = ("cat", "dog", "bird")


def build_tiny_model(seed: int = 0):
    """simple_cnn at 16x24 with every variable set to seeded random values.

    Random batch-norm statistics and large-ish weights make the outputs far from uniform,
    so a served model that lost or mixed up a variable gives visibly different answers.
    """
    model = vk.models.build("simple_cnn", input_shape=(*IMAGE_SIZE, 3),
                            num_classes=len(CLASS_NAMES), filters=(4, 8))
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in variable.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.5, shape)
        variable.assign(value.astype(variable.dtype))
    return model


def hash_tree(directory: str) -> dict[str, str]:
    """sha256 of every file under `directory`, by relative path."""
    digests = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                digests[os.path.relpath(path, directory)] = hashlib.sha256(file.read()).hexdigest()
    return digests
