"""`load`: an exported SavedModel back as a `Predictor`, callable on uint8 images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.preprocessing import Preprocessing
from visionkit.export.metadata import read_metadata
from visionkit.export.versions import resolve_version_dir, version_of

__all__ = ["load", "Predictor", "DEFAULT_BATCH_SIZE"]

# Images sent to the SavedModel per call; bounds memory on long lists.
DEFAULT_BATCH_SIZE = 64

_PIXEL_MAX = 255


def load(path: str | os.PathLike) -> Predictor:
    """Loads a visionkit export (SavedModel, LiteRT or ONNX) as a predictor.

    Args:
        path: a version directory ("saved_models/digits_cnn/3") or a model root
            ("saved_models/digits_cnn"), whose highest version is loaded.

    Returns:
        A `Predictor` for a SavedModel; a `visionkit.export.runtimes.PortablePredictor`
        (same call, properties and outputs, running `ai_edge_litert` or `onnxruntime`,
        on images at the model's input size) for `vk.export.litert` / `vk.export.onnx`.

    Raises:
        FileNotFoundError: if `path` does not exist or holds no SavedModel and no versions.
        ValueError: if the SavedModel was not written by visionkit.

    Example:

    >>> import tempfile, numpy as np, visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
    ...                         filters=(4,))
    >>> root = tempfile.mkdtemp()
    >>> _ = vk.export.saved_model(model, root, task="classification",
    ...                           class_names=["cat", "dog"])
    >>> predictor = vk.export.load(root)
    >>> predictor.version, predictor.class_names
    (1, ['cat', 'dog'])
    >>> predictor(np.zeros((5, 40, 30, 3), np.uint8))["probabilities"].shape
    (5, 2)
    """
    from visionkit.export.runtimes import PortablePredictor, resolve_export

    try:
        export_format = resolve_export(path)[1]
    except FileNotFoundError:  # Predictor says what is missing, in SavedModel terms
        export_format = "saved_model"
    if export_format != "saved_model":
        return PortablePredictor(path)
    return Predictor(path)


class ExportedMetadata:
    """What every loaded export reads from its `visionkit.json` (`self.metadata`)."""

    metadata: dict

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def task(self) -> str:
        return str(self.metadata["task"])

    @property
    def input_size(self) -> tuple[int, ...]:
        return tuple(self.metadata["input_size"])


class Predictor(ExportedMetadata):
    """An exported model, callable on uint8 images and on encoded image files.

    Runs the SavedModel's signatures (`serving_default`, `serve_bytes`) and returns NumPy
    arrays. Use `load` to make one.

    Args:
        path: a version directory or a model root (see `load`).

    Attributes:
        path: the version directory loaded.
        version: its version number (None if its folder name is not an integer).
        metadata: the content of `assets/visionkit.json`.
        class_names: names per class id.
        task: the task's name ("classification", ...).
        input_size: `(height, width, channels)` the model takes; served images of any
            size are resized to it.
        preprocessing: the `Preprocessing` spec of its signatures (EXIF orientation,
            decoding, resize), as recorded in `visionkit.json`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = resolve_version_dir(path)
        self.metadata: dict[str, Any] = read_metadata(self.path)
        self.version = version_of(os.path.basename(os.path.normpath(self.path)))
        self._loaded = tf.saved_model.load(self.path)
        missing = [name for name in ("serving_default", "serve_bytes")
                   if name not in self._loaded.signatures]
        if missing:
            raise ValueError(f"The SavedModel {self.path!r} lacks the signatures {missing}; "
                             "was it written by visionkit.export.saved_model?")
        self._serve_images = self._loaded.signatures["serving_default"]
        self._serve_bytes = self._loaded.signatures["serve_bytes"]

    @property
    def preprocessing(self):
        """The `Preprocessing` spec the signatures apply (from `visionkit.json`).

        Feed it to `visionkit.data.load_images` to read files into exactly the pixels
        this model receives (e.g. for `vk.interpret`). None for exports written before
        visionkit recorded it (they decode as stored, bilinear without antialiasing).
        """
        block = self.metadata.get("preprocessing")
        return Preprocessing.from_dict(block) if block is not None else None

    def __call__(self, images: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, np.ndarray]:
        """Runs `serving_default` on images of any size.

        The arrays are taken as upright RGB (no EXIF orientation: that lives in files)
        and resized in the graph as the training pipeline resized (`preprocessing`).

        Args:
            images: uint8 pixels `[B, H, W, 3]`, or one image `[H, W, 3]` (NumPy or
                tensor). Other integer or float dtypes are accepted when every value is
                a whole number in 0..255.
            batch_size: images per SavedModel call. Defaults to 64.

        Returns:
            The served outputs as NumPy arrays (classification: `probabilities`
            `[B, C]`, `class_id` `[B]`); for a single image, without the batch axis.

        Raises:
            ValueError: for a wrong shape or pixel values outside 0..255.
        """
        pixels = _as_uint8(images)
        single = pixels.ndim == 3
        if single:
            pixels = pixels[np.newaxis]
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"Expected RGB images of shape [batch, height, width, 3] or "
                             f"[height, width, 3]; received shape {pixels.shape}.")
        if not len(pixels):
            raise ValueError("Expected at least one image; received an empty batch.")
        outputs = _in_batches(lambda batch: self._serve_images(images=tf.constant(batch)),
                              pixels, batch_size)
        return {key: value[0] for key, value in outputs.items()} if single else outputs

    def predict_bytes(self, encoded_images: Sequence[bytes],
                      batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, np.ndarray]:
        """Runs `serve_bytes` on encoded images (JPEG, PNG, WebP, BMP or GIF contents).

        Decoding, EXIF orientation and resizing run inside the SavedModel, as the
        training pipeline ran them (`preprocessing`).

        Args:
            encoded_images: a list of the images' bytes, as read from their files.
            batch_size: images per SavedModel call. Defaults to 64.

        Returns:
            The served outputs as NumPy arrays with a leading batch axis.

        Raises:
            TypeError: if an element is not bytes.
            ValueError: if the list is empty.
            tf.errors.InvalidArgumentError: if an image cannot be decoded.
        """
        if isinstance(encoded_images, (bytes, bytearray)):
            encoded_images = [encoded_images]
        encoded = list(encoded_images)
        if not encoded:
            raise ValueError("Expected at least one encoded image; received none.")
        for index, item in enumerate(encoded):
            if not isinstance(item, (bytes, bytearray)):
                raise TypeError(f"Expected encoded images as bytes; element {index} is "
                                f"{type(item).__name__}.")
        array = np.array([bytes(item) for item in encoded], dtype=object)
        return _in_batches(
            lambda batch: self._serve_bytes(images=tf.constant(batch, dtype=tf.string)),
            array, batch_size)

    def __repr__(self) -> str:
        return (f"Predictor(path={self.path!r}, task={self.task!r}, "
                f"num_classes={len(self.class_names)}, input_size={self.input_size})")


def _as_uint8(images: Any) -> np.ndarray:
    pixels = np.asarray(images)
    if pixels.dtype == np.uint8:
        return pixels
    if not (np.issubdtype(pixels.dtype, np.integer) or np.issubdtype(pixels.dtype, np.floating)):
        raise ValueError(f"Expected uint8 pixels; received dtype {pixels.dtype}.")
    if pixels.size and (not np.all(np.isfinite(pixels)) or pixels.min() < 0
                        or pixels.max() > _PIXEL_MAX or np.any(pixels != np.round(pixels))):
        raise ValueError(
            f"Expected uint8 pixels (whole numbers in 0..255); received dtype {pixels.dtype} "
            f"with values from {pixels.min()} to {pixels.max()}. Convert them with "
            "np.clip(np.round(images), 0, 255).astype('uint8') if that is what you mean.")
    return pixels.astype(np.uint8)


def _in_batches(serve, inputs: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    if int(batch_size) < 1:
        raise ValueError(f"Expected batch_size >= 1; received batch_size={batch_size!r}.")
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), int(batch_size)):
        for key, value in serve(inputs[start:start + int(batch_size)]).items():
            parts.setdefault(key, []).append(np.asarray(value))
    return {key: np.concatenate(values) for key, values in parts.items()}
