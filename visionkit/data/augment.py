"""Batch augmentation: presets of Keras 3 layers, the user's own layers, or a callable.

Augmentation runs on whole batches of the train split only (see `Data`). Layers see the
images and any spatial targets of the batch (segmentation masks, bounding boxes), so
each random transform moves them together; class `labels` are held out and put back
unchanged, so no layer can alter them.

Example:

>>> import keras
>>> from visionkit.data.augment import check_augment
>>> check_augment("light")
'light'
>>> check_augment([keras.layers.RandomFlip("horizontal")])  # doctest: +ELLIPSIS
[<RandomFlip ...>]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from visionkit.tasks import Task

__all__ = ["build_augmenter", "check_augment", "PRESETS", "preset_layers"]

PRESETS = ("none", "light", "standard")

# Batch keys that augmentation layers never see: they are restored unchanged afterwards.
_HELD_OUT_KEYS = ("labels",)


def preset_layers(name: str, seed: int | None = None,
                  bounding_box_format: str | None = None) -> list[keras.layers.Layer]:
    """The Keras 3 augmentation layers of a preset.

    - "none": nothing.
    - "light": horizontal flip and small translations (10%).
    - "standard": horizontal flip, rotation (+-10% of a turn), zoom (+-10%), translation
      (10%) and contrast (20%).

    Each layer gets its own seed (`seed + position`) so that their random draws are not
    correlated; all compute in float32 whatever the global dtype policy.

    Args:
        name: one of `PRESETS`.
        seed: base seed of the layers; None for unseeded layers.
        bounding_box_format: the box format of the batches ("xyxy" for detection), so
            geometric layers move boxes with the images. Defaults to None (no boxes).

    Returns:
        A list of Keras layers (empty for "none").

    Raises:
        ValueError: for an unknown preset name.

    Example:

    >>> [type(layer).__name__ for layer in preset_layers("light", seed=0)]
    ['RandomFlip', 'RandomTranslation']
    """
    def seed_of(position: int) -> int | None:
        return None if seed is None else int(seed) + position

    common: dict = {"dtype": "float32"}
    if bounding_box_format is not None:
        common["bounding_box_format"] = bounding_box_format
    if name == "none":
        return []
    if name == "light":
        return [
            keras.layers.RandomFlip("horizontal", seed=seed_of(0), **common),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed_of(1),
                                           **common),
        ]
    if name == "standard":
        return [
            keras.layers.RandomFlip("horizontal", seed=seed_of(0), **common),
            keras.layers.RandomRotation(0.1, fill_mode="constant", seed=seed_of(1), **common),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed_of(2), **common),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed_of(3),
                                           **common),
            keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed_of(4), **common),
        ]
    raise ValueError(f"Unknown augmentation preset {name!r}; expected one of {PRESETS}, a list "
                     "of Keras augmentation layers, or a callable.")


def check_augment(augment: Any) -> Any:
    """Validates an augmentation spec without building anything; returns it normalized.

    None becomes "none"; a single layer is accepted as is.

    Raises:
        ValueError: for an unknown preset name.
        TypeError: for a list item that is not a Keras layer (naming the item and its
            position), or a spec of another type.
    """
    if augment is None:
        return "none"
    if isinstance(augment, str):
        if augment not in PRESETS:
            preset_layers(augment)  # raises the unknown-preset error
        return augment
    if isinstance(augment, type):
        raise TypeError(f"Expected augment as a layer instance or a function; received the "
                        f"class {augment.__name__}. Instantiate it, e.g. {augment.__name__}(...).")
    if isinstance(augment, keras.layers.Layer) or callable(augment):
        return augment
    if isinstance(augment, Sequence):
        for position, item in enumerate(augment):
            if not isinstance(item, keras.layers.Layer):
                raise TypeError(
                    "Expected augment as a list of Keras layers; item "
                    f"{position} is {item!r} of type {type(item).__name__}. Use a preset name "
                    f"{PRESETS} on its own, or keras.layers.Random* layers in the list.")
        return augment
    raise TypeError(f"Expected augment as a preset name {PRESETS}, a list of Keras layers or "
                    f"a callable; received {augment!r} of type {type(augment).__name__}.")


def build_augmenter(augment: Any, task: Task, seed: int | None = None
                    ) -> Callable[[dict], dict] | None:
    """Turns an augmentation spec into a function on batch dicts (or None for none).

    Preset layers are built anew on every call, so each pipeline starts from the same
    seeded random state.

    Args:
        augment: None, a preset name, a Keras layer, a sequence of Keras layers, or a
            callable that takes and returns a batch dict (it sees every key, labels
            included, and is responsible for them).
        task: the task whose batches are augmented.
        seed: seed of the preset layers.

    Returns:
        A function from batch dict to batch dict, or None when there is nothing to do.

    Raises:
        ValueError, TypeError: as `check_augment`.
    """
    augment = check_augment(augment)
    if isinstance(augment, str):
        layers = preset_layers(augment, seed, bounding_box_format=task.bounding_box_format)
    elif isinstance(augment, keras.layers.Layer):
        layers = [augment]
    elif callable(augment):
        return augment
    else:
        layers = list(augment)
    if not layers:
        return None

    def apply(batch: dict) -> dict:
        held = {key: value for key, value in batch.items() if key in _HELD_OUT_KEYS}
        inputs = {key: value for key, value in batch.items() if key not in _HELD_OUT_KEYS}
        inputs = task.prepare_augmented(inputs)
        if set(inputs) == {"images"}:
            images = inputs["images"]
            for layer in layers:
                images = layer(images, training=True)
            inputs = {"images": images}
        else:
            for layer in layers:
                inputs = layer(inputs, training=True)
        inputs["images"] = tf.cast(inputs["images"], tf.float32)
        return task.finish_augmented({**inputs, **held}, tuple(inputs["images"].shape[1:3]))

    return apply
