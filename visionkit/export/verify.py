"""Export verification: the reloaded SavedModel must reproduce the Keras model's outputs.

`verify_saved_model` loads a freshly written SavedModel with `tf.saved_model.load` and
compares what its signatures return with what the Keras model computes eagerly (followed
by the task's `serving_outputs`) on:

- a few images at the model's input size (the validation split of the data, else seeded
  random pixels) through `serving_default`;
- the same images PNG-encoded through `serve_bytes` (PNG is lossless);
- random images of another size through `serving_default`, against the Keras model on
  `tf.image.resize`d copies.

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(8, 8, 3), num_classes=2, filters=(4,))
>>> task = vk.tasks.get_task("classification")
>>> outputs = reference_outputs(model, task, np.zeros((1, 20, 10, 3), np.uint8), (8, 8))
>>> sorted(outputs), outputs["probabilities"].shape
(['class_id', 'probabilities'], (1, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.tasks import Task

if TYPE_CHECKING:
    from visionkit.data.pipeline import Data

__all__ = ["verify_saved_model", "reference_outputs", "ExportVerificationError",
           "VERIFY_IMAGES", "FLOAT32_TOLERANCE", "HALF_PRECISION_TOLERANCE"]

# Images compared between the Keras model and the reloaded SavedModel.
VERIFY_IMAGES = 4
VERIFY_SEED = 0

# Tolerances of the comparison. The SavedModel runs the same kernels as the Keras model,
# but TensorFlow's graph optimizer may fuse ops (conv + batch norm + ReLU), which changes
# float32 results by ~1e-7 and half-precision results by up to a few ulps of 2^-8.
FLOAT32_TOLERANCE = 1e-5
HALF_PRECISION_TOLERANCE = 2e-2

# Verification also runs images of another size, which the graph must resize as
# `tf.image.resize` does; this is how much larger (plus one pixel, to break symmetry).
OTHER_SIZE_FACTOR = 1.5

CHANNELS = 3


class ExportVerificationError(RuntimeError):
    """The reloaded SavedModel does not reproduce the Keras model's outputs."""


def verify_saved_model(directory: str, model: keras.Model, task: Task,
                       image_size: Sequence[int], data: Data | None = None) -> None:
    """Reloads the SavedModel in `directory` and checks both signatures against `model`.

    Args:
        directory: the SavedModel written by the exporter.
        model: the Keras model it was exported from.
        task: the task whose `serving_outputs` the signatures apply.
        image_size: `(height, width)` of the model's input.
        data: the data set whose validation images to use; None for seeded random pixels.

    Raises:
        ExportVerificationError: if a signature is missing or an output differs beyond
            tolerance (float outputs) or at all (integer outputs).
    """
    image_size = tuple(int(size) for size in image_size)
    loaded = tf.saved_model.load(directory)
    missing = [name for name in ("serving_default", "serve_bytes")
               if name not in loaded.signatures]
    if missing:
        raise ExportVerificationError(f"The SavedModel lacks the signatures {missing}.")
    serve_images = loaded.signatures["serving_default"]
    serve_bytes = loaded.signatures["serve_bytes"]
    tolerance = _tolerance(model)

    images = _verification_images(data, image_size)
    expected = reference_outputs(model, task, images, image_size)
    _compare("serving_default at the model's size", serve_images(images=tf.constant(images)),
             expected, tolerance)
    encoded = tf.stack([tf.io.encode_png(image) for image in images])
    _compare("serve_bytes on PNG copies", serve_bytes(images=encoded), expected, tolerance)

    height, width = image_size
    other_size = (int(height * OTHER_SIZE_FACTOR) + 1, int(width * OTHER_SIZE_FACTOR) + 1)
    rng = np.random.default_rng(VERIFY_SEED + 1)
    other = rng.integers(0, 256, size=(2, *other_size, CHANNELS), dtype=np.uint8)
    _compare(f"serving_default at size {other_size}", serve_images(images=tf.constant(other)),
             reference_outputs(model, task, other, image_size), tolerance)


def reference_outputs(model: keras.Model, task: Task, images: np.ndarray,
                      image_size: Sequence[int]) -> dict[str, np.ndarray]:
    """What serving should return, computed eagerly by the Keras model.

    Args:
        model: the Keras model.
        task: the task whose `serving_outputs` to apply.
        images: uint8 `[B, H, W, 3]`.
        image_size: `(height, width)` of the model's input; other sizes are resized with
            `tf.image.resize` (bilinear, the pipelines' resize).

    Returns:
        The task's served outputs as NumPy arrays.
    """
    image_size = tuple(int(size) for size in image_size)
    pixels = tf.convert_to_tensor(images, tf.float32)
    if tuple(images.shape[1:3]) != image_size:
        pixels = tf.image.resize(pixels, image_size)
    outputs = model(pixels, training=False)
    outputs = tf.nest.map_structure(
        lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, outputs)
    sizes = tf.tile(tf.constant([images.shape[1:3]], tf.int32), [len(images), 1])
    return {key: np.asarray(value) for key, value in
            task.serving_outputs(outputs, sizes, model).items()}


def _verification_images(data: Data | None, image_size: tuple[int, int]) -> np.ndarray:
    """uint8 `[N, H, W, 3]`: the first validation images of `data`, else seeded noise."""
    if data is not None and data.val_examples is not None and data.val_size:
        examples = data.val_examples.take(VERIFY_IMAGES)
        options = tf.data.Options()
        # Without autotuning, dropping the iterator does not wait for the autotuner.
        options.autotune.enabled = False
        images = [np.asarray(example["images"]) for example in examples.with_options(options)]
        if images:
            return np.clip(np.round(np.stack(images)), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(VERIFY_SEED)
    return rng.integers(0, 256, size=(VERIFY_IMAGES, *image_size, CHANNELS), dtype=np.uint8)


def _tolerance(model: keras.Model) -> float:
    compute_dtype = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    if compute_dtype in ("float32", "float64"):
        return FLOAT32_TOLERANCE
    return HALF_PRECISION_TOLERANCE


def _compare(name: str, served: Mapping[str, Any], expected: Mapping[str, np.ndarray],
             tolerance: float) -> None:
    served = {key: np.asarray(value) for key, value in served.items()}
    if set(served) != set(expected):
        raise ExportVerificationError(
            f"{name}: the SavedModel returns {sorted(served)}, the Keras model "
            f"{sorted(expected)}.")
    for key, reference in expected.items():
        value = served[key]
        if value.shape != reference.shape or value.dtype != reference.dtype:
            raise ExportVerificationError(
                f"{name}: output {key!r} is {value.dtype} {value.shape} in the SavedModel "
                f"but {reference.dtype} {reference.shape} from the Keras model.")
        if np.issubdtype(reference.dtype, np.floating):
            difference = float(np.max(np.abs(value - reference))) if value.size else 0.0
            # Relative to the output's magnitude when it exceeds 1 (e.g. box coordinates
            # in pixels); probabilities keep the absolute tolerance.
            scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
            if not difference <= tolerance * scale:
                raise ExportVerificationError(
                    f"{name}: output {key!r} differs from the Keras model's by up to "
                    f"{difference:.3g} (tolerance {tolerance * scale:g}).")
        elif not np.array_equal(value, reference):
            mismatches = int(np.sum(value != reference))
            raise ExportVerificationError(
                f"{name}: output {key!r} differs from the Keras model's in {mismatches} of "
                f"{value.size} entries.")
