"""Export verification: the reloaded SavedModel must reproduce the Keras model's outputs.

`verify_saved_model` loads a freshly written SavedModel with `tf.saved_model.load` and
compares what its signatures return with what the Keras model computes eagerly (followed
by the task's `serving_outputs`) on:

- a few images at the model's input size (the validation split of the data, else seeded
  random pixels) through `serving_default`;
- the same images PNG-encoded through `serve_bytes` (PNG is lossless);
- random images of another size through `serving_default`, against the Keras model on
  copies resized by the export's `Preprocessing`;
- a handful of encoded files (`probe_files`: a JPEG with EXIF orientation 6, a JPEG 5x
  the input size, a PNG, a grayscale JPEG, a 16-bit PNG) through the training
  pipeline's decoder and through `preprocess_bytes`: the model inputs may differ by at
  most `PIXEL_TOLERANCE` grey levels; and `serve_bytes` on them against the Keras model
  on the served pixels.

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(8, 8, 3), num_classes=2, filters=(4,))
>>> task = vk.tasks.get_task("classification")
>>> outputs = reference_outputs(model, task, np.zeros((1, 20, 10, 3), np.uint8), (8, 8))
>>> sorted(outputs), outputs["probabilities"].shape
(['class_id', 'probabilities'], (1, 2))
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.preprocessing import Preprocessing
from visionkit.vocabulary import Task

if TYPE_CHECKING:
    from visionkit.data.pipeline import Data

__all__ = ["verify_saved_model", "reference_outputs", "ExportVerificationError",
           "VERIFY_IMAGES", "FLOAT32_TOLERANCE", "HALF_PRECISION_TOLERANCE",
           "PIXEL_TOLERANCE", "probe_files", "training_pixels"]

# Largest difference (grey levels, 0..255) allowed between the pixels the training
# decoder produces for a file and those the SavedModel feeds its model.
PIXEL_TOLERANCE = 1.0
# The "large JPEG" probe is this many times the model's input size.
LARGE_FACTOR = 5

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
                       image_size: Sequence[int], data: Data | None = None,
                       preprocessing: Preprocessing | None = None) -> None:
    """Reloads the SavedModel in `directory` and checks its signatures against `model`.

    Args:
        directory: the SavedModel written by the exporter.
        model: the Keras model it was exported from.
        task: the task whose `serving_outputs` the signatures apply.
        image_size: `(height, width)` of the model's input.
        data: the data set whose validation images and file decoder to use; None for
            seeded random pixels and the spec's own decoder.
        preprocessing: the spec the export was made with. Defaults to
            `data.preprocessing`, else the defaults at `image_size`.

    Raises:
        ExportVerificationError: if a signature is missing, an output differs beyond
            tolerance (float outputs) or at all (integer outputs), or the pixels of a
            probe file differ from the training decoder's by more than 1 grey level.
    """
    image_size = tuple(int(size) for size in image_size)
    if preprocessing is None:
        preprocessing = (data.preprocessing if data is not None
                         else Preprocessing(image_size, source="defaults"))
    loaded = tf.saved_model.load(directory)
    missing = [name for name in ("serving_default", "serve_bytes", "preprocess_bytes")
               if name not in loaded.signatures]
    if missing:
        raise ExportVerificationError(f"The SavedModel lacks the signatures {missing}.")
    serve_images = loaded.signatures["serving_default"]
    serve_bytes = loaded.signatures["serve_bytes"]
    tolerance = _tolerance(model)

    images = _verification_images(data, image_size)
    expected = reference_outputs(model, task, images, image_size, preprocessing)
    _compare("serving_default at the model's size", serve_images(images=tf.constant(images)),
             expected, tolerance)
    encoded = tf.stack([tf.io.encode_png(image) for image in images])
    _compare("serve_bytes on PNG copies", serve_bytes(images=encoded), expected, tolerance)

    height, width = image_size
    other_size = (int(height * OTHER_SIZE_FACTOR) + 1, int(width * OTHER_SIZE_FACTOR) + 1)
    rng = np.random.default_rng(VERIFY_SEED + 1)
    other = rng.integers(0, 256, size=(2, *other_size, CHANNELS), dtype=np.uint8)
    _compare(f"serving_default at size {other_size}", serve_images(images=tf.constant(other)),
             reference_outputs(model, task, other, image_size, preprocessing), tolerance)
    _verify_files(loaded, model, task, image_size, data, preprocessing, tolerance)


def probe_files(image_size: Sequence[int]) -> list[tuple[str, bytes]]:
    """`(description, encoded bytes)` of the files export verification feeds both sides.

    Smooth, non-square, seeded content (gradients plus a few edges), so orientation,
    scaling and resize mistakes change the pixels by many grey levels.
    """
    from PIL import Image

    height, width = (int(size) for size in image_size)
    files = []

    def content(rows: int, columns: int, seed: int) -> np.ndarray:
        y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
        rng = np.random.default_rng(VERIFY_SEED + seed)
        image = np.stack([255 * y / max(rows - 1, 1), 255 * x / max(columns - 1, 1),
                          128 + 100 * np.sin((x + 2 * y) / max(rows, columns) * 12)], -1)
        image[: rows // 3, : columns // 4] = rng.integers(0, 256, 3)  # a corner patch
        return np.clip(image, 0, 255).astype(np.uint8)

    def encode(array: np.ndarray, file_format: str, **options) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, file_format, **options)
        return buffer.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    stored = content(2 * width + 3, 3 * height + 1, 1)  # turned 90 degrees for display
    files.append(("a JPEG with EXIF orientation 6", encode(stored, "JPEG", quality=95,
                                                            exif=exif)))
    files.append((f"a JPEG {LARGE_FACTOR}x the input size",
                  encode(content(LARGE_FACTOR * height + 5, LARGE_FACTOR * width + 7, 2),
                         "JPEG", quality=95)))
    files.append(("a PNG", encode(content(2 * height + 1, 2 * width - 1, 3), "PNG")))
    files.append(("a grayscale JPEG", encode(content(height + 9, width + 4, 4)[..., 0],
                                             "JPEG", quality=95)))
    deep = (content(height + 3, 2 * width, 5).astype(np.uint16) * 257)[..., 0]
    files.append(("a 16-bit grayscale PNG", encode(deep, "PNG")))
    return files


def training_pixels(data: Data | None, preprocessing: Preprocessing,
                    files: Sequence[tuple[str, bytes]]) -> np.ndarray:
    """float32 `[N, H, W, 3]`: what the training pipeline's decoder makes of `files`.

    The data set's own file decoder (`data.decode`, reading the files from disk as the
    pipeline does) when it has one; otherwise the spec's decoder.
    """
    decoder = getattr(data, "decode", None) if data is not None else None
    if decoder is None or not hasattr(decoder, "path_key"):
        return np.stack([np.asarray(preprocessing.pixels_from_bytes(tf.constant(contents)))
                         for _, contents in files])
    pixels = []
    with tempfile.TemporaryDirectory(prefix="visionkit-verify-") as folder:
        for index, (_, contents) in enumerate(files):
            path = os.path.join(folder, f"probe_{index}")
            with open(path, "wb") as file:
                file.write(contents)
            image, _, _ = decoder.decode({decoder.path_key: tf.constant(path)})
            pixels.append(np.asarray(decoder.resize(image)))
    return np.stack(pixels)


def _verify_files(loaded, model: keras.Model, task: Task, image_size: tuple[int, int],
                  data: Data | None, preprocessing: Preprocessing, tolerance: float) -> None:
    files = probe_files(image_size)
    trained = training_pixels(data, preprocessing, files)
    encoded = tf.constant([contents for _, contents in files])
    served = loaded.signatures["preprocess_bytes"](images=encoded)
    pixels = np.asarray(served["images"])
    if pixels.shape != trained.shape:
        raise ExportVerificationError(
            f"preprocess_bytes returns pixels of shape {pixels.shape}; the training "
            f"decoder {trained.shape}.")
    for (description, _), mine, theirs in zip(files, pixels, trained):
        difference = float(np.max(np.abs(mine - theirs)))
        if not difference <= PIXEL_TOLERANCE:
            raise ExportVerificationError(
                f"On {description}, the pixels the SavedModel feeds the model differ from "
                f"the training pipeline's by up to {difference:.1f} grey levels (mean "
                f"{float(np.mean(np.abs(mine - theirs))):.2f}; tolerance "
                f"{PIXEL_TOLERANCE:g}): serving would not see what training saw.")
    sizes = np.asarray(served["image_sizes"])
    _compare("serve_bytes on encoded probe files", loaded.signatures["serve_bytes"](
        images=encoded), reference_outputs(model, task, pixels, image_size, preprocessing,
                                           image_sizes=sizes), tolerance)


def reference_outputs(model: keras.Model, task: Task, images: np.ndarray,
                      image_size: Sequence[int], preprocessing: Preprocessing | None = None,
                      image_sizes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """What serving should return, computed eagerly by the Keras model.

    Args:
        model: the Keras model.
        task: the task whose `serving_outputs` to apply.
        images: uint8 (or float32 0..255) `[B, H, W, 3]`.
        image_size: `(height, width)` of the model's input; other sizes are resized with
            `preprocessing.resize`.
        preprocessing: the export's spec. Defaults to `Preprocessing(image_size)`.
        image_sizes: int32 `[B, 2]` original image sizes handed to the task. Defaults to
            the images' own size.

    Returns:
        The task's served outputs as NumPy arrays.
    """
    image_size = tuple(int(size) for size in image_size)
    pixels = tf.convert_to_tensor(images, tf.float32)
    if tuple(images.shape[1:3]) != image_size:
        pixels = (preprocessing or Preprocessing(image_size)).resize(pixels)
    outputs = model(pixels, training=False)
    outputs = tf.nest.map_structure(
        lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, outputs)
    sizes = (tf.constant(image_sizes, tf.int32) if image_sizes is not None else
             tf.tile(tf.constant([images.shape[1:3]], tf.int32), [len(images), 1]))
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
