"""The TensorFlow Serving directory layout: a model root holding integer version folders.

TensorFlow Serving watches a model root such as `saved_models/digits_cnn/` and serves the
highest subdirectory whose name is an integer (`1/`, `2/`, ...); it ignores every other
name. Exports are staged in a folder whose name starts with a dot, so a half-written
export is never mistaken for a version.

Example:

>>> import os, tempfile
>>> root = tempfile.mkdtemp()
>>> for name in ("1", "3", ".staging", "notes"):
...     os.mkdir(os.path.join(root, name))
>>> list_versions(root)
[1, 3]
>>> next_version(root)
4
"""

from __future__ import annotations

import os

__all__ = ["list_versions", "next_version", "version_of", "resolve_version_dir",
           "SAVED_MODEL_FILE", "STAGING_PREFIX"]

# The file every SavedModel directory holds (tf.saved_model's constant, spelled out so this
# module does not import TensorFlow).
SAVED_MODEL_FILE = "saved_model.pb"

# Staging folders start with a dot: not an integer, so TensorFlow Serving ignores them.
STAGING_PREFIX = ".visionkit-export-"


def version_of(name: str) -> int | None:
    """The version number a folder name stands for, or None if it is not a version.

    Args:
        name: a folder name (not a path).

    Returns:
        The integer for names made only of ASCII digits ("1", "12"), else None.
    """
    if name and name.isascii() and name.isdigit():
        return int(name)
    return None


def _version_dirs(directory: str) -> dict[int, str]:
    """Version number -> folder name ("7" wins over "007" when both exist)."""
    found: dict[int, str] = {}
    if not os.path.isdir(directory):
        return found
    with os.scandir(directory) as entries:
        for entry in entries:
            version = version_of(entry.name)
            if version is not None and entry.is_dir():
                if version not in found or entry.name == str(version):
                    found[version] = entry.name
    return found


def list_versions(directory: str | os.PathLike) -> list[int]:
    """The versions present under a model root, in increasing order.

    Args:
        directory: the model root.

    Returns:
        Sorted integers of the subdirectories named by an integer; [] if `directory`
        does not exist.
    """
    return sorted(_version_dirs(os.fspath(directory)))


def next_version(directory: str | os.PathLike) -> int:
    """The version a new export under `directory` takes: the highest existing plus one.

    Args:
        directory: the model root.

    Returns:
        `max(existing) + 1`, or 1 for a root without versions.
    """
    versions = list_versions(directory)
    return versions[-1] + 1 if versions else 1


def resolve_version_dir(path: str | os.PathLike) -> str:
    """The SavedModel directory `path` designates: itself, or its highest version.

    Args:
        path: a version directory (holding `saved_model.pb`) or a model root.

    Returns:
        The version directory's path.

    Raises:
        FileNotFoundError: if `path` does not exist, or is a directory with neither a
            SavedModel nor integer version subdirectories.
        NotADirectoryError: if `path` is a file.
        ValueError: if the highest version directory holds no SavedModel.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Expected a SavedModel version directory or a model root; no such path: "
            f"{path!r}.")
    if not os.path.isdir(path):
        raise NotADirectoryError(
            f"Expected a SavedModel version directory or a model root; received a file: "
            f"{path!r}.")
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    versions = _version_dirs(path)
    if not versions:
        raise FileNotFoundError(
            f"Expected a SavedModel directory (holding {SAVED_MODEL_FILE}) or a model root "
            f"with integer version subdirectories (1/, 2/, ...); {path!r} has neither.")
    latest = os.path.join(path, versions[max(versions)])
    if not os.path.isfile(os.path.join(latest, SAVED_MODEL_FILE)):
        raise ValueError(
            f"The latest version directory {latest!r} holds no {SAVED_MODEL_FILE}; it is "
            "not a SavedModel. Remove it or pass the path of a complete version.")
    return latest
