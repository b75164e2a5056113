"""Helpers for testing code built on visionkit: raw images, image and mask files, tiny
models of each task, and `run_model_test`, the one check every model builder passes.

The models visionkit builds take raw pixels (uint8 or float, 0..255) and rescale inside,
so the images made here are raw uint8 pixels. The tiny models keep each check under a
second on one CPU core; `run_model_test` is to a model builder what Keras's
`run_layer_test` is to a layer: build, call, train one step, save and reload.

This module sits at the top of the package graph (it may import every package; none
imports it) and does not import pytest: failures are plain `AssertionError`s.

Example:

>>> from visionkit import testing
>>> images = testing.random_images((16, 24, 3), batch=2)
>>> images.shape, images.dtype
((2, 16, 24, 3), dtype('uint8'))
>>> testing.tiny_input_shape("unet")
(32, 64, 3)
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from visionkit import models, vocabulary
from visionkit.tasks import get_task
from visionkit.vocabulary import IGNORE_INDEX

__all__ = ["CLASSIFICATION_SHAPE", "LARGE_STEM_SHAPE", "NUM_CLASSES", "SEGMENTATION_SHAPE",
           "noise", "random_images", "run_model_test", "save_image", "solid",
           "tiny_input_shape", "tiny_model", "tiny_model_kwargs", "truncated_jpeg",
           "write_bytes", "write_images", "write_mask"]

# Non-square on purpose: a model that mixes up height and width fails on these.
CLASSIFICATION_SHAPE = (32, 40, 3)
# AlexNet and ZFNet need at least 63x63 (three 3x3/2 pools).
LARGE_STEM_SHAPE = (64, 72, 3)
SEGMENTATION_SHAPE = (32, 64, 3)
NUM_CLASSES = 3
_EXIF_ORIENTATION = 0x0112
_LOSSLESS = {".png", ".bmp", ".tif", ".tiff"}


def random_images(shape: tuple[int, ...], batch: int = 2, seed: int = 0) -> np.ndarray:
    """Uniformly random raw pixels.

    Args:
        shape: `(height, width, channels)` of one image, in pixels.
        batch: how many images.
        seed: seed of NumPy's default generator (the same seed gives the same pixels).

    Returns:
        uint8 array `[batch, height, width, channels]`, values 0..255.

    Example:

    >>> random_images((4, 6, 1), batch=3).shape
    (3, 4, 6, 1)
    """
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)


def noise(height: int, width: int, seed: int = 0, block: int = 1) -> np.ndarray:
    """Random RGB pixels, constant over `block` x `block` squares (so JPEG keeps them).

    Args:
        height: image height in pixels.
        width: image width in pixels.
        seed: seed of NumPy's default generator.
        block: side of the constant squares, in pixels (1: every pixel independent).

    Returns:
        uint8 array `[height, width, 3]`.

    Example:

    >>> pixels = noise(4, 6, block=2)
    >>> bool((pixels[0::2, 0::2] == pixels[1::2, 1::2]).all())
    True
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-height // block), -(-width // block), 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, block, 0), block, 1)[:height, :width]


def solid(height: int, width: int, colour) -> np.ndarray:
    """An RGB image of one colour.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        colour: `(red, green, blue)`, each 0..255.

    Returns:
        uint8 array `[height, width, 3]`.

    Example:

    >>> solid(2, 3, (255, 0, 0))[1, 2].tolist()
    [255, 0, 0]
    """
    return np.broadcast_to(np.asarray(colour, np.uint8), (height, width, 3)).copy()


def save_image(path: str | Path, pixels: np.ndarray, mode: str | None = None,
               orientation: int | None = None, **save_args: Any) -> Path:
    """Writes pixels to an image file with PIL, creating the parent folders.

    Args:
        path: the file; its suffix picks the format (`.png`, `.jpg`, `.bmp`, ...).
        pixels: uint8 `[H, W, 3]`, `[H, W, 4]` or `[H, W]` (also bool or uint16
            `[H, W]`).
        mode: a PIL mode to convert to before saving (`"P"`, `"CMYK"`, `"I;16"`, ...),
            or None to keep the array's.
        orientation: an EXIF orientation tag (1..8) to store, or None for none. The
            pixels are stored as given; a viewer turns them as the tag says.
        **save_args: passed to `PIL.Image.save` (`quality=`, `optimize=`, ...).

    Returns:
        The path written, as a `Path`.

    Raises:
        ValueError: if `orientation` is not 1..8, or `pixels` are not uint8 (or bool,
            or uint16 `[H, W]`) of rank 2 or 3.

    Example:

    >>> path = save_image("turned.jpg", noise(8, 12), orientation=6, quality=95)
    >>> Image.open(path).getexif()[0x0112]
    6
    """
    pixels = np.asarray(pixels)
    grey16 = pixels.dtype == np.uint16 and pixels.ndim == 2
    if not (pixels.dtype in (np.uint8, np.bool_) or grey16) or pixels.ndim not in (2, 3):
        raise ValueError(
            f"save_image writes uint8 pixels 0..255 [H, W], [H, W, 3] or [H, W, 4] (or uint16 "
            f"[H, W]); received {pixels.dtype} of shape {pixels.shape}. Convert first, e.g. "
            f"(pixels * 255).round().astype(np.uint8) for floats in 0..1.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    if orientation is not None:
        if orientation not in range(1, 9):
            raise ValueError(f"orientation must be an EXIF orientation 1..8; received "
                             f"{orientation!r}.")
        exif = image.getexif()
        exif[_EXIF_ORIENTATION] = orientation
        save_args["exif"] = exif
    image.save(path, **save_args)
    return path


def write_bytes(path: str | Path, data: bytes | str) -> Path:
    """Writes bytes (or UTF-8 text) to `path`, creating the parent folders.

    Args:
        path: the file.
        data: bytes, or a string written as UTF-8.

    Returns:
        The path written, as a `Path`.

    Example:

    >>> write_bytes("notes/a.txt", "cat").read_text()
    'cat'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def truncated_jpeg(path: str | Path, seed: int = 0) -> Path:
    """A JPEG of a 64x64 noisy image cut to half its bytes (a download that stopped).

    Args:
        path: the file to write.
        seed: seed of the noise.

    Returns:
        The path written, as a `Path`.

    Example:

    >>> truncated_jpeg("cut.jpg").read_bytes()[:2]
    b'\\xff\\xd8'
    """
    path = save_image(path, noise(64, 64, seed), quality=90)
    data = path.read_bytes()
    return write_bytes(path, data[: len(data) // 2])


def write_images(folder: str | Path, sizes: Mapping[str, tuple[int, int]],
                 seed: int = 0) -> list[Path]:
    """Writes one random RGB image per file name, each of its own size.

    Args:
        folder: the folder to write into (created if missing).
        sizes: file name (its suffix picks the format) to `(height, width)` in pixels.
        seed: seed of the pixels; the images are drawn in the order of `sizes`.

    Returns:
        The paths written, in the order of `sizes`.

    Example:

    >>> paths = write_images("photos", {"a.png": (12, 10), "b.jpg": (8, 8)})
    >>> [Image.open(path).size for path in paths]  # PIL gives (width, height)
    [(10, 12), (8, 8)]
    """
    rng = np.random.default_rng(seed)
    return [save_image(Path(folder) / name, rng.integers(0, 256, (height, width, 3),
                                                         dtype=np.uint8))
            for name, (height, width) in sizes.items()]


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Writes a segmentation mask (class index per pixel) as a lossless 8-bit file.

    Args:
        path: the file; a lossless format (`.png`, `.bmp`, `.tif`), since JPEG would
            change class indices at the edges.
        mask: integer `[H, W]` class indices, 0..255 (255 is `IGNORE_INDEX`).

    Returns:
        The path written, as a `Path`.

    Raises:
        ValueError: if the format is lossy, the mask is not 2-D integers, or a value is
            outside 0..255.

    Example:

    >>> mask = np.array([[0, 1], [2, 255]])
    >>> np.asarray(Image.open(write_mask("mask.png", mask))).tolist()
    [[0, 1], [2, 255]]
    """
    path = Path(path)
    if path.suffix.lower() not in _LOSSLESS:
        raise ValueError(f"A mask needs a lossless format ({', '.join(sorted(_LOSSLESS))}); "
                         f"received {path.name!r}.")
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"A mask is 2-D integer class indices [H, W]; received "
                         f"{mask.dtype} of shape {mask.shape}.")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"Mask values must be 0..255; received {mask.min()}..{mask.max()}.")
    return save_image(path, mask.astype(np.uint8))


def _per_pixel(name: str) -> bool:
    """Whether the registered model `name` predicts a class per pixel (`[B, H, W, C]`)."""
    return get_task(models.get(name).task).output_rank == 4


def tiny_input_shape(name: str) -> tuple[int, int, int]:
    """A small non-square input shape the registered model `name` accepts.

    Args:
        name: a name from `visionkit.models.available()`.

    Returns:
        `SEGMENTATION_SHAPE` for segmentation models, `LARGE_STEM_SHAPE` for AlexNet and
        ZFNet, `CLASSIFICATION_SHAPE` for the other classifiers.

    Example:

    >>> tiny_input_shape("unet"), tiny_input_shape("resnet18")
    ((32, 64, 3), (32, 40, 3))
    """
    if _per_pixel(name):
        return SEGMENTATION_SHAPE
    return LARGE_STEM_SHAPE if name in ("alexnet", "zfnet") else CLASSIFICATION_SHAPE


def tiny_model_kwargs(name: str) -> dict:
    """Builder options that make the registered model `name` tiny (few filters).

    Args:
        name: a name from `visionkit.models.available()`.

    Returns:
        Keyword arguments for `visionkit.models.build` (empty where the family has no
        width option, e.g. keras.applications models without `alpha`).

    Example:

    >>> tiny_model_kwargs("unet")
    {'depth': 2, 'filters': 4}
    """
    parameters = inspect.signature(models.get(name).builder).parameters
    if _per_pixel(name):
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


def tiny_model(name: str, input_shape: tuple[int, ...] | None = None,
               num_classes: int = NUM_CLASSES, **kwargs: Any) -> keras.Model:
    """Builds the registered model `name` at a tiny size.

    Args:
        name: a name from `visionkit.models.available()`.
        input_shape: `(height, width, channels)`; None for `tiny_input_shape(name)`.
        num_classes: number of output classes.
        **kwargs: builder options, added to (and overriding) `tiny_model_kwargs(name)`.

    Returns:
        A `keras.Model` that takes raw pixels (0..255).

    Example:

    >>> tiny_model("simple_cnn", activation=None).output_shape
    (None, 3)
    """
    options = {**tiny_model_kwargs(name), **kwargs}
    return models.build(name, input_shape or tiny_input_shape(name), num_classes, **options)


def _targets(task: Any, outputs: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """Random targets fitting the task and the model's output: a class per image, a
    multi-hot row per image (multi-label tasks), or a class per pixel (`[B, H, W, C]`
    outputs) with the top rows of each mask set to `IGNORE_INDEX`."""
    rng = np.random.default_rng(seed)
    if task.multi_label:
        return rng.integers(0, 2, outputs.shape).astype(np.float32)
    if outputs.ndim == 2:
        return rng.integers(0, num_classes, outputs.shape[:1])
    masks = rng.integers(0, num_classes, outputs.shape[:3])
    masks[:, : max(1, outputs.shape[1] // 8)] = IGNORE_INDEX
    return masks


def run_model_test(name_or_builder: str | Callable[..., keras.Model],
                   input_shape: tuple[int, ...], num_classes: int = NUM_CLASSES, *,
                   init_kwargs: Mapping[str, Any] | None = None, task: str | None = None,
                   batch_size: int = 2, expected_output_shape: tuple[int, ...] | None = None,
                   expected_output_dtype: str = "float32", ends_in_probabilities: bool = True,
                   targets: np.ndarray | None = None, run_training_check: bool = True,
                   run_saving_check: bool = True, atol: float = 1e-6,
                   seed: int = 0) -> keras.Model:
    """Builds a model, calls it, trains it one step and round-trips it through `.keras`.

    The checks, each an `AssertionError` naming the model and what differs:
    1. the output on `batch_size` random raw uint8 images has `expected_output_shape`
       and `expected_output_dtype`; the model ends in probabilities exactly when
       `ends_in_probabilities` says so, and then they sum to 1 over the last axis
       (single-label tasks); a multi-label model does not end in softmax;
    2. one SGD step (learning rate 0.1) with the task's own loss (for segmentation,
       one that leaves out `IGNORE_INDEX` pixels) gives a finite loss and moves the
       first and the last trainable weights (gradients reach the stem and the head);
    3. `model.save` to `.keras` and `keras.saving.load_model` (no `custom_objects`) give
       a model whose outputs equal the original's within `atol`.

    Args:
        name_or_builder: a name from `visionkit.models.available()`, or a callable
            `builder(input_shape, num_classes, **init_kwargs)` returning a `keras.Model`.
        input_shape: `(height, width, channels)` of one raw image, in pixels.
        num_classes: number of output classes.
        init_kwargs: builder options (for a name, given to `visionkit.models.build`).
        task: the task name whose loss trains the model; None for the registered
            model's task, or for a builder "classification" (`[B, C]` output) or
            "segmentation" (`[B, H, W, C]` output).
        batch_size: images per batch.
        expected_output_shape: the output shape including the batch axis; None for
            `(batch_size, num_classes)`, or `(batch_size, height, width, num_classes)`
            for a per-pixel task.
        expected_output_dtype: the output's NumPy dtype name.
        ends_in_probabilities: whether the model should end in softmax or sigmoid
            probabilities (False for logits).
        targets: training targets for check 2; None for random targets of the task
            (class indices, multi-hot rows, or masks with their top rows ignored).
        run_training_check: whether to run check 2.
        run_saving_check: whether to run check 3.
        atol: absolute tolerance of the round-trip comparison.
        seed: seed of Keras (initial weights) and of the images and targets.

    Returns:
        The built (and, with `run_training_check`, once trained) model.

    Raises:
        AssertionError: if a check fails.
        ValueError: if `name_or_builder` or `task` is an unknown name, or the model
            returns a dict, list or tuple of outputs rather than one tensor.

    Example:

    >>> model = run_model_test("simple_cnn", (16, 24, 3), num_classes=3,
    ...                        init_kwargs={"filters": (4, 8)})
    >>> model.output_shape
    (None, 3)
    """
    keras.utils.set_random_seed(seed)
    init_kwargs = dict(init_kwargs or {})
    if isinstance(name_or_builder, str):
        model = models.build(name_or_builder, input_shape, num_classes, **init_kwargs)
        label = name_or_builder
        task = task or models.get(name_or_builder).task
    else:
        model = name_or_builder(input_shape, num_classes, **init_kwargs)
        label = getattr(name_or_builder, "__name__", repr(name_or_builder))
    images = random_images(input_shape, batch_size, seed)
    raw_outputs = model(images, training=False)
    if isinstance(raw_outputs, (Mapping, list, tuple)):
        keys = list(raw_outputs) if isinstance(raw_outputs, Mapping) else len(raw_outputs)
        raise ValueError(f"{label}: run_model_test checks a model with one tensor output; "
                         f"received a {type(raw_outputs).__name__} of outputs ({keys}).")
    outputs = np.asarray(raw_outputs)
    if task is None:
        task = "classification" if outputs.ndim == 2 else "segmentation"
    task = get_task(task)
    if expected_output_shape is None:
        expected_output_shape = ((batch_size, *input_shape[:2], num_classes)
                                 if task.output_rank == 4 else (batch_size, num_classes))

    assert outputs.shape == tuple(expected_output_shape), (
        f"{label}: expected output shape {tuple(expected_output_shape)}, received "
        f"{outputs.shape}")
    assert outputs.dtype == np.dtype(expected_output_dtype), (
        f"{label}: expected output dtype {expected_output_dtype}, received {outputs.dtype}")
    assert vocabulary.ends_in_probabilities(model) == ends_in_probabilities, (
        f"{label}: expected ends_in_probabilities {ends_in_probabilities}, received "
        f"{not ends_in_probabilities} (output activation "
        f"{vocabulary.output_activation(model)!r})")
    activation = vocabulary.output_activation(model)
    if ends_in_probabilities and not task.multi_label:
        np.testing.assert_allclose(
            outputs.sum(axis=-1), 1.0, rtol=1e-5,
            err_msg=f"{label}: the {task.name} outputs do not sum to 1 over the classes "
                    f"(output activation {activation!r}): a single-label task needs softmax "
                    f"probabilities, or logits with ends_in_probabilities=False; independent "
                    f"sigmoid scores are a multi-label model (task='multilabel')")
    assert not (task.multi_label and activation == "softmax"), (
        f"{label}: a {task.name} model ends in softmax, whose scores compete (they sum to "
        f"1, so two present labels cannot both pass 0.5); it needs sigmoid scores or logits")

    if run_training_check:
        if targets is None:
            targets = _targets(task, outputs, num_classes, seed + 1)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=task.loss(model),
                      run_eagerly=True)
        before = [np.array(weight) for weight in model.trainable_weights]
        value = model.train_on_batch(images, targets)
        assert np.all(np.isfinite(value)), f"{label}: the training loss is {value}"
        after = [np.array(weight) for weight in model.trainable_weights]
        for index, place in ((0, "first"), (-1, "last")):
            assert not np.array_equal(before[index], after[index]), (
                f"{label}: one training step left the {place} trainable weight "
                f"({model.trainable_weights[index].path}) unchanged")

    if run_saving_check:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            restored = keras.saving.load_model(path)
        np.testing.assert_allclose(
            np.asarray(restored(images, training=False)),
            np.asarray(model(images, training=False)), atol=atol,
            err_msg=f"{label}: the model reloaded from .keras gives other outputs")
    return model
