"""The metadata an exported SavedModel carries: `assets/labels.txt`, `assets/visionkit.json`.

`labels.txt` holds one class name per line (line `i` = class id `i`), the form serving
tools expect. `visionkit.json` describes the export: task, input size, class names, the
library versions that wrote it, when, evaluation metrics, the signatures and the
`preprocessing` block (`visionkit.data.preprocessing.Preprocessing.to_dict()`): how the
signatures turn files and arrays into model pixels, readable by any client.

Example:

>>> metadata = build_metadata(task="classification", input_shape=(16, 24, 3),
...                           class_names=["cat", "dog"], version=1)
>>> metadata["input_size"], metadata["signatures"]
([16, 24, 3], ['serving_default', 'serve_bytes', 'preprocess_bytes'])
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

from visionkit.version import __version__

__all__ = ["build_metadata", "write_assets", "read_metadata", "to_json_value",
           "LABELS_FILE", "METADATA_FILE", "ASSETS_DIR", "FORMAT_NAME", "FORMAT_VERSION",
           "SIGNATURE_NAMES"]

ASSETS_DIR = "assets"
LABELS_FILE = "labels.txt"
METADATA_FILE = "visionkit.json"

# Identifies a visionkit export; bump FORMAT_VERSION when the metadata's meaning changes.
FORMAT_NAME = "visionkit.saved_model"
FORMAT_VERSION = 2  # 2: adds the `preprocessing` block and the `preprocess_bytes` signature

SIGNATURE_NAMES = ["serving_default", "serve_bytes", "preprocess_bytes"]


def to_json_value(value: Any, name: str = "value") -> Any:
    """Converts `value` into plain JSON types (NumPy scalars and arrays included).

    Args:
        value: a number, string, bool, None, NumPy scalar or array, or a mapping or
            sequence of those.
        name: how error messages name `value`.

    Returns:
        The same content as dicts, lists, str, int, float, bool and None; non-finite
        floats become None (JSON has no NaN).

    Raises:
        TypeError: for a value JSON cannot represent.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and callable(value.tolist):  # NumPy scalars and arrays
        return to_json_value(value.tolist(), name)
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item, f"{name}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, f"{name}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"Expected {name} to hold only numbers, strings, booleans, None, lists and dicts "
        f"(JSON); received an object of type {type(value).__name__}: {value!r}.")


def _library_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"visionkit": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version()}


def build_metadata(task: str, input_shape: Sequence[int], class_names: Sequence[str],
                   version: int, metrics: Mapping[str, Any] | None = None,
                   model_name: str | None = None,
                   data: Mapping[str, Any] | None = None,
                   preprocessing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of `visionkit.json`.

    Args:
        task: the task's name.
        input_shape: `(height, width, channels)` the model takes; served images of any
            size are resized to it.
        class_names: names per class id.
        version: the export's version number.
        metrics: evaluation metrics to record, or None.
        model_name: the Keras model's name, or None.
        data: the data set's `describe()` summary, or None.
        preprocessing: the `Preprocessing.to_dict()` block (how files and arrays become
            model pixels; `source` says "data" or "defaults"), or None.

    Returns:
        A JSON-ready dict.

    Raises:
        TypeError: if `metrics` or `data` hold values JSON cannot represent.
    """
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "task": task,
        "input_size": [int(size) for size in input_shape],
        "class_names": [str(name) for name in class_names],
        "num_classes": len(class_names),
        "model_name": model_name,
        "version": int(version),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _library_versions(),
        "signatures": list(SIGNATURE_NAMES),
        "metrics": to_json_value(metrics, "metrics") if metrics is not None else None,
        "data": to_json_value(data, "data") if data is not None else None,
        "preprocessing": (to_json_value(preprocessing, "preprocessing")
                          if preprocessing is not None else None),
    }


def write_assets(directory: str, class_names: Sequence[str],
                 metadata: Mapping[str, Any]) -> tuple[str, str]:
    """Writes `labels.txt` and `visionkit.json` into `directory`.

    Args:
        directory: an existing folder.
        class_names: names per class id, one per line.
        metadata: the content of `visionkit.json`.

    Returns:
        `(labels_path, metadata_path)`.
    """
    labels_path = os.path.join(directory, LABELS_FILE)
    metadata_path = os.path.join(directory, METADATA_FILE)
    with open(labels_path, "w", encoding="utf-8") as file:
        file.write("".join(f"{name}\n" for name in class_names))
    with open(metadata_path, "w", encoding="utf-8") as file:
        json.dump(metadata, file, indent=2, sort_keys=False, allow_nan=False)
        file.write("\n")
    return labels_path, metadata_path


def read_metadata(version_dir: str) -> dict[str, Any]:
    """Reads `assets/visionkit.json` of an exported version directory.

    Args:
        version_dir: a SavedModel directory written by `visionkit.export.saved_model`.

    Returns:
        The metadata dict.

    Raises:
        ValueError: if the directory holds no visionkit metadata, or unreadable metadata.
    """
    path = os.path.join(version_dir, ASSETS_DIR, METADATA_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{version_dir!r} is a SavedModel but not a visionkit export: expected "
            f"{ASSETS_DIR}/{METADATA_FILE} in it. Load it with tf.saved_model.load instead.")
    try:
        with open(path, encoding="utf-8") as file:
            metadata = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Could not read the export metadata {path!r}: {error}") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(
            f"Expected {path!r} to be visionkit export metadata with "
            f"format={FORMAT_NAME!r}; received format="
            f"{metadata.get('format') if isinstance(metadata, dict) else None!r}.")
    return metadata
