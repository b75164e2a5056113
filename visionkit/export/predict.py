"""Predictions on image files with an exported model (what `visionkit predict` prints).

Files are read as bytes and sent through the SavedModel's `serve_bytes` signature, so the
decoding, EXIF orientation and resizing are the served ones (the training pipeline's
`Preprocessing`, baked into the graph), not a Python re-implementation.

Example:

>>> results = [{"file": "cat.png", "class_id": 0, "class_name": "cat",
...             "probability": 0.9,
...             "top": [{"class_id": 0, "class_name": "cat", "probability": 0.9},
...                     {"class_id": 1, "class_name": "dog", "probability": 0.1}]}]
>>> print(format_predictions(results))
cat.png: cat (0.900)
    1. cat  0.900
    2. dog  0.100
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.files import (
    IMAGE_EXTENSIONS,
    describe_other_files,
    list_image_files,
    list_other_files,
)
from visionkit.errors import BadFileError, DataWarning, format_file_list
from visionkit.export.loader import DEFAULT_BATCH_SIZE, Predictor, load
from visionkit.vocabulary import get_task

__all__ = ["predict_files", "format_predictions"]

# What `predict_files` can decode, for its messages.
_DECODABLE = "an image file with JPEG, PNG, WebP, BMP or GIF contents"
# Left-out files a warning names before counting the rest.
_LISTED_SKIPPED_FILES = 5
# The lines TensorFlow wraps an op's error in when a graph (the SavedModel's) fails.
_GRAPH_CONTEXT = ("Graph execution error", "Detected at node", "<stack traces", "[[")


def predict_files(path: str | os.PathLike | Predictor,
                  image_files: Sequence[str | os.PathLike], top_k: int = 3,
                  batch_size: int = DEFAULT_BATCH_SIZE,
                  out_dir: str | os.PathLike | None = None,
                  skip_undecodable: bool = True,
                  return_skipped: bool = False) -> Any:
    """Predicts image files (JPEG, PNG, BMP, GIF) with an exported model.

    A file the SavedModel cannot decode (truncated, empty, not an image whatever its
    extension) or that cannot be read (a symbolic link to a missing file, no permission)
    is left out, whether it was named or found in a folder: the others are
    predicted, and the left-out files are counted in one `DataWarning` naming the first
    few with TensorFlow's decoding error (`skip_undecodable=False` makes the first one an
    error instead). A batch is sent whole; only a batch that fails is retried file by
    file to find its bad files.

    Args:
        path: a version directory, a model root (its latest version is used) or a
            `Predictor` already loaded.
        image_files: paths of the images, or folders (every image under them, as
            `image_folder` lists them: hidden files skipped, other files counted in a
            `DataWarning`, and so are the masks, overlays or drawings an earlier
            prediction wrote into the folder). Two inputs of the same name get numbered
            output files (`photo_2_mask.png`), said in a `DataWarning`.
        top_k: for classifiers, how many of the most probable classes to list (at most
            the number of classes). Defaults to 3.
        batch_size: images per SavedModel call. Defaults to 64.
        out_dir: a folder for the files a task writes per image (segmentation: the mask
            PNG and a coloured overlay PNG). Defaults to None (the image's folder).
        skip_undecodable: leave out (and warn about) files that cannot be decoded.
            Defaults to True; False raises on the first one.
        return_skipped: also return the left-out files. Defaults to False.

    Returns:
        One dict per predicted file, in the files' order (left-out files have none). For
        classifiers: `file`, `class_id`, `class_name`, `probability` (of the predicted
        class) and `top`, a list of `top_k` dicts (`class_id`, `class_name`,
        `probability`) by decreasing probability. For other tasks, what the task's
        `prediction_result` returns (segmentation: `mask_file`, `overlay_file`,
        `image_size`, `class_fractions`, `summary`). With `return_skipped`, a pair
        `(results, skipped)`, `skipped` a list of `(file, reason)` pairs.

    Raises:
        FileNotFoundError: if a named file or folder does not exist (a file found in a
            folder that cannot be read is left out and counted instead).
        ValueError: if `top_k < 1`, no files are given or a folder holds no image.
        BadFileError (a ValueError): naming the files that cannot be decoded, when no
            file can be (or the first one, with `skip_undecodable=False`).

    Warns:
        DataWarning: how many files were left out as undecodable, naming the first
            five with the reason.
    """
    if int(top_k) < 1:
        raise ValueError(f"Expected top_k >= 1; received top_k={top_k!r}.")
    items = [os.fspath(file) for file in image_files]
    for item in items:
        if not os.path.exists(item):
            link = (f" (a symbolic link to the missing {os.readlink(item)!r})"
                    if os.path.islink(item) else "")
            raise FileNotFoundError(f"No such image file or folder: {item!r}{link}.")
    if not items:
        raise ValueError("Expected at least one image file; received none.")
    predictor = path if isinstance(path, Predictor) else load(path)
    files = _expand_folders(items, get_task(predictor.task).prediction_files, out_dir)

    outputs: dict[str, list[np.ndarray]] = {}
    predicted: list[str] = []
    skipped: list[tuple[str, str]] = []
    for start in range(0, len(files), int(batch_size)):
        chunk, encoded = [], []
        for file in files[start:start + int(batch_size)]:
            data = _read(file)
            if isinstance(data, bytes):
                chunk.append(file)
                encoded.append(data)
            elif not skip_undecodable:
                raise BadFileError(file, data, _DECODABLE)
            else:
                skipped.append((file, data))
        if not chunk:
            continue
        try:
            parts = [predictor.predict_bytes(encoded, batch_size=batch_size)]
            predicted += chunk
        except tf.errors.InvalidArgumentError:
            # The batch's error does not say which file failed: each is tried alone.
            parts = []
            for file, data in zip(chunk, encoded):
                try:
                    parts.append(predictor.predict_bytes([data]))
                except tf.errors.InvalidArgumentError as error:
                    reason = _decode_error(error)
                    if not skip_undecodable:
                        raise BadFileError(file, reason, _DECODABLE) from None
                    skipped.append((file, reason))
                    continue
                predicted.append(file)
        for batch in parts:
            for key, value in batch.items():
                outputs.setdefault(key, []).append(value)
    position = {file: index for index, file in enumerate(files)}
    skipped.sort(key=lambda pair: position[pair[0]])  # unread files came out first
    if not predicted:
        raise BadFileError(skipped[0][0], skipped[0][1], _DECODABLE, others=skipped[1:])
    if skipped:
        warnings.warn(f"Left out {len(skipped)} of {len(files)} image file(s) that could "
                      f"not be read or decoded (expected {_DECODABLE}); predicted the other "
                      f"{len(predicted)}:\n"
                      + format_file_list(skipped, limit=_LISTED_SKIPPED_FILES),
                      DataWarning, stacklevel=2)
    arrays = {key: np.concatenate(values) for key, values in outputs.items()}

    task = get_task(predictor.task)
    folder = os.fspath(out_dir) if out_dir is not None else None
    named = {}
    if task.prediction_files:
        stems = _output_stems(predicted, folder, task.prediction_files)
        named = {"stem": stems}
    results = [task.prediction_result(file, {key: value[index]
                                             for key, value in arrays.items()},
                                      predictor.class_names, folder, top_k=int(top_k),
                                      **{key: value[index] for key, value in named.items()})
               for index, file in enumerate(predicted)]
    return (results, skipped) if return_skipped else results


def _output_stems(files: list[str], out_dir: str | None,
                  suffixes: tuple[str, ...]) -> list[str]:
    """The stem each file's output files start with: its name without the extension,
    unless another input would write the same files (`a.jpg` and `a.png`, or `x/a.png`
    and `y/a.png` with one `out_dir`): then the later ones get `_2`, `_3`..., said in
    one `DataWarning`. The same file named twice keeps its stem (same outputs)."""
    owners: dict[tuple[str, str], str] = {}
    stems, renamed = [], []
    for file in files:
        real = os.path.realpath(file)
        folder = os.path.abspath(out_dir if out_dir is not None else os.path.dirname(real))
        stem = candidate = os.path.splitext(os.path.basename(file))[0]
        number = 1
        # Case-insensitive, as the file systems of macOS and Windows compare names.
        while owners.setdefault((folder, candidate.lower()), real) != real:
            number += 1
            candidate = f"{stem}_{number}"
        if candidate != stem:
            renamed.append((file, f"writes {candidate}{suffixes[0]}"))
        stems.append(candidate)
    if renamed:
        warnings.warn(f"{len(renamed)} image file(s) share their name (without extension) "
                      f"with another input whose {' and '.join(suffixes)} files would go to "
                      f"the same folder; their files get a number so that none is "
                      f"overwritten:\n" + format_file_list(renamed, limit=_LISTED_SKIPPED_FILES),
                      DataWarning, stacklevel=3)
    return stems


def _expand_folders(items: list[str], suffixes: tuple[str, ...] = (),
                    out_dir: str | os.PathLike | None = None) -> list[str]:
    """`items` with each folder replaced by the images under it (sorted, recursively,
    hidden files skipped, as `image_folder` lists them); other files in it are counted
    in one `DataWarning`, and so are the files an earlier prediction wrote there (a
    `<stem><suffix>` of the task's `suffixes` next to an image `<stem>.*` or in
    `out_dir`), left out so that a second run does not predict its own masks.

    Raises:
        ValueError: for a folder holding no image.
    """
    files: list[str] = []
    for item in items:
        if not os.path.isdir(item):
            files.append(item)
            continue
        found = list_image_files(item)
        others = list_other_files(item)
        if others:
            warnings.warn(f"{item}: left out {len(others)} file(s) that are not images "
                          f"visionkit reads ({', '.join(IMAGE_EXTENSIONS)}): "
                          f"{describe_other_files(others)}.", DataWarning, stacklevel=3)
        written = _earlier_outputs(found, suffixes, out_dir)
        if written:
            found = [file for file in found if file not in written]
            warnings.warn(f"{item}: left out {len(written)} file(s) that an earlier "
                          f"prediction wrote ({' and '.join(suffixes)} next to their image "
                          f"or in the output folder): {describe_other_files(written)}. "
                          f"Name them to predict them.", DataWarning, stacklevel=3)
        if not found:
            raise ValueError(f"Expected images ({', '.join(IMAGE_EXTENSIONS)}) in the folder "
                             f"{item!r}; found none.")
        files += found
    return files


def _earlier_outputs(files: list[str], suffixes: tuple[str, ...],
                     out_dir: str | os.PathLike | None) -> list[str]:
    """The files of `files` that a prediction wrote: `<stem><suffix>` (or
    `<stem>_<n><suffix>`) beside an image `<stem>.*`, or any `*<suffix>` in `out_dir`."""
    if not suffixes:
        return []
    output_folder = None if out_dir is None else os.path.abspath(os.fspath(out_dir))
    stems = {(os.path.dirname(file), os.path.splitext(os.path.basename(file))[0].lower())
             for file in files}
    written = []
    for file in files:
        folder, name = os.path.split(file)
        for suffix in suffixes:
            if not name.lower().endswith(suffix.lower()):
                continue
            stem = name[:-len(suffix)].lower()
            numbered = stem.rsplit("_", 1)[0] if stem.rsplit("_", 1)[-1].isdigit() else stem
            if (os.path.abspath(folder) == output_folder or (folder, stem) in stems
                    or (folder, numbered) in stems):
                written.append(file)
                break
    return written


def format_predictions(results: Sequence[dict[str, Any]]) -> str:
    """Formats the results of `predict_files` for a terminal.

    Args:
        results: dicts as `predict_files` returns them.

    Returns:
        Text: per classified file, a line `file: class (probability)` and its top classes;
        for other tasks, the file and the shapes of its outputs.
    """
    lines: list[str] = []
    for result in results:
        if "top" in result:
            lines.append(f"{result['file']}: {result['class_name']} "
                         f"({result['probability']:.3f})")
            width = max(len(str(entry["class_name"])) for entry in result["top"])
            for rank, entry in enumerate(result["top"], start=1):
                lines.append(f"    {rank}. {str(entry['class_name']):<{width}}  "
                             f"{entry['probability']:.3f}")
        elif "summary" in result:
            lines.append(f"{result['file']}: {result['summary']}")
        else:
            shapes = ", ".join(f"{key} {list(np.shape(value))}"
                               for key, value in sorted(result.get("outputs", {}).items()))
            lines.append(f"{result['file']}: {shapes}")
    return "\n".join(lines)


def _read(file: str) -> bytes | str:
    """The bytes of `file`, or why it cannot be read (a symbolic link to a missing file
    found in a folder, no permission) as a reason for the left-out files."""
    try:
        with open(file, "rb") as handle:
            return handle.read()
    except OSError as error:
        if os.path.islink(file) and not os.path.exists(file):
            return f"a symbolic link to the missing {os.readlink(file)!r}"
        return f"cannot be read ({error.strerror or error})"


def _decode_error(error: tf.errors.InvalidArgumentError) -> str:
    """The decoder's own words from a SavedModel call's error ("Input is empty.", "Unknown
    image file format. ...", "jpeg::Uncompress failed. ..."), without the graph context
    TensorFlow wraps them in."""
    lines = [line.strip() for line in error.message.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(_GRAPH_CONTEXT)]
    return reasons[0] if reasons else error.message.strip()
