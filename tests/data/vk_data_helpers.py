"""Helpers of the data tests (imported by the test modules and conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_image(path: Path, pixels: np.ndarray, mode: str | None = None, **save_args) -> Path:
    """Writes `pixels` (uint8 [H, W, 3] or [H, W]) to `path`, optionally converted to `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    image.save(path, **save_args)
    return path


def solid(height: int, width: int, colour) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.uint8), (height, width, 3)).copy()


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG of a noisy image cut to half its bytes."""
    rng = np.random.default_rng(seed)
    save_image(path, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), quality=90)
    data = path.read_bytes()
    return write_bytes(path, data[: len(data) // 2])
