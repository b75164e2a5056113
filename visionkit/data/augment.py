"""Batch augmentation: presets of Keras 3 layers, or the user's own layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from visionkit.tasks import Task

__all__ = ["build_augmenter", "PRESETS", "preset_layers"]

PRESETS = ("none", "light", "standard")


def preset_layers(name: str, seed: int | None = None) -> list[keras.layers.Layer]:
    """The Keras 3 augmentation layers of a preset.

    - "none": nothing.
    - "light": horizontal flip and small translations (10%).
    - "standard": horizontal flip, rotation (+-10%), zoom (+-10%), translation (10%)
      and contrast (20%).

    Raises:
        ValueError: for an unknown preset name.
    """
    if name == "none":
        return []
    if name == "light":
        return [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        ]
    if name == "standard":
        return [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
        ]
    raise ValueError(f"Unknown augmentation preset {name!r}; expected one of {PRESETS}, a list "
                     "of Keras augmentation layers, or a callable.")


def build_augmenter(augment: Any, task: Task, seed: int | None = None
                    ) -> Callable[[dict], dict] | None:
    """Turns an augmentation spec into a function on batch dicts (or None for none).

    Args:
        augment: None, a preset name, a sequence of Keras layers, or a callable that takes
            and returns a batch dict.
        task: the task whose batches are augmented.
        seed: seed of the preset layers.
    """
    if augment is None:
        return None
    if isinstance(augment, str):
        layers = preset_layers(augment, seed)
    elif callable(augment) and not isinstance(augment, keras.layers.Layer):
        return augment
    elif isinstance(augment, keras.layers.Layer):
        layers = [augment]
    elif isinstance(augment, Sequence):
        layers = list(augment)
    else:
        raise TypeError(f"Expected augment as a preset name {PRESETS}, a list of Keras layers or "
                        f"a callable; received {type(augment).__name__}.")
    if not layers:
        return None

    def apply(batch: dict) -> dict:
        for layer in layers:
            batch = layer(batch, training=True)
        return batch

    return apply
