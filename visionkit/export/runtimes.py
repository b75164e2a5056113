"""LiteRT and ONNX exports loaded in their own runtimes, behind the `Predictor` interface.

A version directory written by `vk.export.litert` holds `model.tflite`, one by
`vk.export.onnx` holds `model.onnx`; both hold `labels.txt` and `visionkit.json` beside
the model. `PortablePredictor` runs the file with `ai_edge_litert.interpreter.Interpreter`
or `onnxruntime.InferenceSession` (no TensorFlow graph runs) and returns the same outputs
as the SavedModel's `serving_default` for images at the model's input size.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from visionkit.data.preprocessing import Preprocessing
from visionkit.export.loader import DEFAULT_BATCH_SIZE, ExportedMetadata, _as_uint8
from visionkit.export.metadata import LABELS_FILE, METADATA_FILE
from visionkit.export.versions import SAVED_MODEL_FILE, _version_dirs, version_of

__all__ = ["PortablePredictor", "resolve_export", "MODEL_FILES", "FORMATS"]

MODEL_FILES = {"litert": "model.tflite", "onnx": "model.onnx"}
FORMATS = ("saved_model", "litert", "onnx")
FORMAT_NAMES = {"litert": "visionkit.litert", "onnx": "visionkit.onnx"}


def _format_in(directory: str) -> str | None:
    if os.path.isfile(os.path.join(directory, SAVED_MODEL_FILE)):
        return "saved_model"
    for name, file in MODEL_FILES.items():
        if os.path.isfile(os.path.join(directory, file)):
            return name
    return None


def resolve_export(path: str | os.PathLike) -> tuple[str, str]:
    """`(version directory, format)` of an export path.

    Args:
        path: a version directory, a model root (its highest version is taken), or a
            `.tflite` / `.onnx` file inside a version directory.

    Returns:
        The version directory and "saved_model", "litert" or "onnx".

    Raises:
        FileNotFoundError: if nothing exportable is found at `path`.
    """
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith((".tflite", ".onnx")):
        path = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Expected an export version directory, model root or "
                                f".tflite/.onnx file; no such directory: {path!r}.")
    found = _format_in(path)
    if found is not None:
        return path, found
    versions = _version_dirs(path)
    if versions:
        latest = os.path.join(path, versions[max(versions)])
        found = _format_in(latest)
        if found is not None:
            return latest, found
        raise FileNotFoundError(f"The latest version directory {latest!r} holds none of "
                                f"{[SAVED_MODEL_FILE, *MODEL_FILES.values()]}.")
    raise FileNotFoundError(
        f"Expected a visionkit export ({SAVED_MODEL_FILE}, {MODEL_FILES['litert']} or "
        f"{MODEL_FILES['onnx']}) or a model root with integer versions in {path!r}.")


def read_portable_metadata(directory: str, export_format: str) -> dict[str, Any]:
    """Reads the `visionkit.json` beside a LiteRT or ONNX model."""
    path = os.path.join(directory, METADATA_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            metadata = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the export metadata {path!r}: {error}") from None
    if metadata.get("format") != FORMAT_NAMES[export_format]:
        raise ValueError(f"Expected {path!r} to have format={FORMAT_NAMES[export_format]!r}; "
                         f"received {metadata.get('format')!r}.")
    return metadata


class _LiteRTRunner:
    def __init__(self, file: str, select_tf_ops: bool) -> None:
        if select_tf_ops:  # the Flex delegate ships with TensorFlow, not ai-edge-litert
            import tensorflow as tf

            self.interpreter = tf.lite.Interpreter(model_path=file)
        else:
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=file)
        self.runner = self.interpreter.get_signature_runner("serving_default")

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {key: np.array(value) for key, value in self.runner(images=images).items()}


class _ONNXRunner:
    def __init__(self, file: str) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        self.session = onnxruntime.InferenceSession(file, options,
                                                    providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.names = [output.name for output in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.session.run(None, {self.input: images})))


class PortablePredictor(ExportedMetadata):
    """A LiteRT or ONNX export, callable on uint8 images like `vk.export.Predictor`.

    Args:
        path: a version directory, model root or model file (see `resolve_export`).

    Attributes:
        path, version, metadata, format ("litert" or "onnx"), class_names, task,
        input_size `(height, width, 3)`, preprocessing (the spec clients resize with),
        batch_size (images per runtime call the model accepts: 1 for detectors, else
        None for any).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        directory, export_format = resolve_export(path)
        if export_format == "saved_model":
            raise ValueError(f"{directory!r} is a SavedModel; load it with vk.export.load.")
        self.path = directory
        self.format = export_format
        self.metadata = read_portable_metadata(directory, export_format)
        self.version = version_of(os.path.basename(os.path.normpath(directory)))
        file = os.path.join(directory, MODEL_FILES[export_format])
        if export_format == "litert":
            self._run = _LiteRTRunner(file, bool(self.metadata.get("select_tf_ops")))
        else:
            self._run = _ONNXRunner(file)
        self.batch_size = self.metadata.get("batch_size")

    @property
    def preprocessing(self):
        """The `Preprocessing` spec a client resizes images with before sending them."""
        return Preprocessing.from_dict(self.metadata["preprocessing"])

    def __call__(self, images: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, np.ndarray]:
        """Runs the model on uint8 images at its input size.

        Args:
            images: uint8 `[B, H, W, 3]` or one image `[H, W, 3]` with `(H, W)` the
                model's input size (resize others with `preprocessing`, e.g.
                `vk.data.load_images(paths, predictor.preprocessing)`).
            batch_size: images per runtime call (detectors always take one). Defaults
                to 64.

        Returns:
            The served outputs as NumPy arrays, as `vk.export.Predictor` returns them.

        Raises:
            ValueError: for a wrong shape or size, or values outside 0..255.
        """
        pixels = _as_uint8(images)
        single = pixels.ndim == 3
        if single:
            pixels = pixels[np.newaxis]
        expected = tuple(self.input_size[:2])
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (*expected, 3):
            raise ValueError(
                f"This {self.format} export takes uint8 images of shape [batch, "
                f"{expected[0]}, {expected[1]}, 3] (its input is fixed); received shape "
                f"{pixels.shape}. Resize files with vk.data.load_images(paths, "
                "predictor.preprocessing) or use the SavedModel, which resizes inside.")
        if not len(pixels):
            raise ValueError("Expected at least one image; received an empty batch.")
        step = int(self.batch_size or batch_size)
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(pixels), step):
            for key, value in self._run(np.ascontiguousarray(pixels[start:start + step])).items():
                parts.setdefault(key, []).append(value)
        outputs = {key: np.concatenate(values) for key, values in parts.items()}
        return {key: value[0] for key, value in outputs.items()} if single else outputs

    def latency_ms(self, images: np.ndarray, repeats: int = 1) -> float:
        """Milliseconds per image over `repeats` passes on `images` (after one warm-up)."""
        self(images[:1])
        start = time.perf_counter()
        for _ in range(repeats):
            self(images)
        return 1000 * (time.perf_counter() - start) / (repeats * len(images))

    def __repr__(self) -> str:
        return (f"PortablePredictor(path={self.path!r}, format={self.format!r}, "
                f"task={self.task!r}, input_size={self.input_size})")


def labels_path(directory: str) -> str:
    return os.path.join(directory, LABELS_FILE)
