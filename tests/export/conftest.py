"""Shared fixtures of the export tests: a tiny non-square classifier, its data, an export."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import CLASS_NAMES, IMAGE_SIZE, build_tiny_model

import visionkit as vk


@pytest.fixture(scope="session")
def tiny_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, *IMAGE_SIZE, 3), dtype=np.uint8)
    labels = np.arange(40) % len(CLASS_NAMES)
    return vk.data.from_arrays(images, labels, class_names=CLASS_NAMES, validation_split=0.25,
                               batch_size=8)


@pytest.fixture(scope="session")
def tiny_model():
    return build_tiny_model()


@pytest.fixture(scope="session")
def val_images(tiny_data) -> np.ndarray:
    """The validation images as uint8 `[N, 16, 24, 3]`."""
    images = np.concatenate([np.asarray(batch) for batch, _ in tiny_data.val])
    assert np.array_equal(images, np.round(images))  # whole pixel values: uint8 is lossless
    return images.astype(np.uint8)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_model, tiny_data) -> str:
    """Version 1 of the tiny model under a fresh root; returns the version directory."""
    root = tmp_path_factory.mktemp("saved_models") / "tiny_cnn"
    return vk.export.saved_model(tiny_model, root, data=tiny_data,
                                 metrics={"accuracy": np.float32(0.75), "num_examples": 10})
