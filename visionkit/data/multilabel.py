"""Multi-label data sources: several classes per image, as a multi-hot target.

Two forms:

- `multilabel_from_lists(images, label_lists)`: images in memory and, per image, a list
  of its classes (names or ids).
- `multilabel_csv(path)`: a CSV of `file,labels` rows whose labels are separated by a
  space, "|", ";" or "," (a quoted `"cat,dog"`) (one separator for the whole file, found
  from the rows), with an optional header row. Files are relative to the CSV's folder (or `images_dir`).

Both give a `Data` of the "multilabel" task: `labels` float32 `[K]` multi-hot per image.
An image with no label is kept (all classes absent) and counted in a warning. The split
is a seeded random permutation (not stratified: a multi-label set has no single class
per image to stratify on).

Example:

>>> import numpy as np
>>> data = multilabel_from_lists(np.zeros((4, 8, 8, 3), np.uint8),
...                              [["cat"], ["dog", "cat"], [], ["dog"]], validation_split=0.5)
>>> data.class_names, data.task.name
(('cat', 'dog'), 'multilabel')
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, check_pixel_values
from visionkit.errors import DataWarning
from visionkit.vocabulary import get_task

__all__ = ["multilabel_from_lists", "multilabel_csv", "multi_hot", "LABEL_SEPARATORS"]

logger = logging.getLogger(__name__)

# The label separators a CSV may use, in the order they are looked for.
LABEL_SEPARATORS = ("|", ";", ",", " ")
# First cells of a header row (compared case-insensitively).
_HEADER_NAMES = ("file", "filename", "file_name", "image", "path", "image_id", "id")


def multi_hot(label_lists: Sequence[Sequence[Any]],
              class_names: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Multi-hot float32 `[N, K]` from per-image lists of class names or ids.

    Args:
        label_lists: per image, its classes (names, or int ids into `class_names`).
        class_names: the classes, in id order. Defaults to the sorted names seen.

    Returns:
        `(matrix, class_names)`.

    Raises:
        ValueError: for a label that is not one of `class_names` (naming the image), an
            id out of range, or fewer than one class overall.
    """
    lists = [list(labels) if not isinstance(labels, str) else [labels]
             for labels in label_lists]
    if class_names is None:
        seen = sorted({str(label) for labels in lists for label in labels
                       if not isinstance(label, (int, np.integer))})
        if any(isinstance(label, (int, np.integer)) for labels in lists for label in labels):
            raise ValueError("Integer labels need class_names (the name of each id).")
        class_names = seen
    names = tuple(str(name) for name in class_names)
    if not names:
        raise ValueError("Expected at least one class; no image has a label.")
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(lists), len(names)), np.float32)
    for row, labels in enumerate(lists):
        for label in labels:
            if isinstance(label, (int, np.integer)):
                if not 0 <= int(label) < len(names):
                    raise ValueError(f"Image {row} has class id {label}, outside 0..{len(names) - 1} "
                                     f"(class_names={list(names)[:10]}).")
                matrix[row, int(label)] = 1.0
            elif str(label) in index:
                matrix[row, index[str(label)]] = 1.0
            else:
                raise ValueError(f"Image {row} has the label {label!r}, which is not one of "
                                 f"class_names {list(names)[:10]}.")
    empty = int(np.sum(matrix.sum(axis=1) == 0))
    if empty:
        logger.warning("%d of %d images have no label (all classes absent); they are kept "
                       "as negatives for every class.", empty, len(lists))
    return matrix, names


def _split(count: int, validation_split: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"Expected 0 <= validation_split < 1; received {validation_split!r}.")
    order = np.random.default_rng(seed).permutation(count)
    held = int(round(count * float(validation_split)))
    return order[held:], order[:held]


def multilabel_from_lists(images: np.ndarray, label_lists: Sequence[Sequence[Any]],
                          class_names: Sequence[str] | None = None,
                          image_size: tuple[int, int] | None = None,
                          validation_split: float = 0.2, batch_size: int = 32,
                          augment: object = "none", seed: int | None = 0,
                          threshold: float = 0.5) -> Data:
    """A multi-label `Data` set from in-memory images and per-image label lists.

    Args:
        images: `[N, H, W, 3]` pixels 0..255 (uint8 or float).
        label_lists: per image, its classes (names, or ids into `class_names`).
        class_names: the classes in id order. Defaults to the sorted names seen.
        image_size: resize to `(height, width)`. Defaults to the arrays' size.
        validation_split: fraction held out (seeded permutation). Defaults to 0.2.
        batch_size: examples per batch. Defaults to 32.
        augment: augmentation of the train split (see `Data`). Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        threshold: the task's decision threshold. Defaults to 0.5.

    Returns:
        A `Data` of the "multilabel" task.

    Raises:
        ValueError: for mismatched lengths, bad image arrays (also images that are not
            raw pixels in 0..255: scaled to 0..1, 16-bit, NaN) or unknown labels.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Expected images [N, H, W, 3]; received shape {images.shape}.")
    check_pixel_values(images)
    if len(images) != len(label_lists):
        raise ValueError(f"Expected one label list per image; received {len(images)} images "
                         f"and {len(label_lists)} label lists.")
    matrix, names = multi_hot(label_lists, class_names)
    size = tuple(int(s) for s in (image_size or images.shape[1:3]))
    train, val = _split(len(images), validation_split, seed)

    def examples(rows: np.ndarray) -> tf.data.Dataset:
        dataset = tf.data.Dataset.from_tensor_slices({"images": images[rows],
                                                      "labels": matrix[rows]})

        def prepare(example):
            image = tf.cast(example["images"], tf.float32)
            if tuple(images.shape[1:3]) != size:
                image = Preprocessing(size).resize(image)  # the resize an export serves with
            return {"images": image, "labels": example["labels"]}

        return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)

    return Data(task=get_task("multilabel", threshold=threshold), class_names=names, image_size=size,
                train_examples=examples(train), val_examples=examples(val) if len(val) else None,
                train_size=len(train), val_size=len(val), batch_size=batch_size,
                augment=augment, seed=seed)


def _read_rows(path: str) -> list[tuple[int, str, str]]:
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) > 2:
                raise ValueError(f"{path}, line {number}: expected 'file,labels' (2 columns); "
                                 f"received {len(row)} columns {row[:4]}. Separate labels "
                                 "with a space, '|' or ';' inside the second column (or "
                                 "quote it: \"cat,dog\").")
            rows.append((number, row[0].strip(), row[1].strip() if len(row) > 1 else ""))
    if rows and rows[0][1].lower() in _HEADER_NAMES:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} holds no 'file,labels' rows.")
    return rows


def _separator(rows: list[tuple[int, str, str]], path: str) -> str:
    used = [s for s in LABEL_SEPARATORS if any(s in labels for _, _, labels in rows)]
    if len(used) > 1 and " " in used:
        # Spaces next to "|" or ";" ("cat | dog") are padding, not a separator.
        used.remove(" ")
    if len(used) > 1:
        examples = [f"line {n}: {labels!r}" for n, _, labels in rows
                    if any(s in labels for s in used)][:3]
        raise ValueError(f"{path} separates labels with both {used[0]!r} and {used[1]!r} "
                         f"(e.g. {examples}); use one separator for the whole file.")
    return used[0] if used else "|"


def _warn_repeated_files(rows: list[tuple[int, str, str]], files: list[str],
                         path: str) -> None:
    """One `DataWarning` counting the files named on more than one line."""
    lines: dict[str, list[int]] = {}
    for (number, _name, _labels), file in zip(rows, files):
        lines.setdefault(os.path.normpath(file), []).append(number)
    repeated = [(name, numbers) for name, numbers in lines.items() if len(numbers) > 1]
    if repeated:
        shown = "; ".join(f"{os.path.basename(name)!r} on lines {numbers}"
                          for name, numbers in repeated[:3])
        warnings.warn(f"{path}: {len(repeated)} file(s) are named on more than one line "
                      f"(e.g. {shown}); each line is one example, so they count several "
                      "times (and may be in both splits). Merge their labels into one line "
                      "if that was not meant.", DataWarning, stacklevel=3)


def multilabel_csv(path: str | os.PathLike, images_dir: str | os.PathLike | None = None,
                   image_size: tuple[int, int] = (224, 224),
                   class_names: Sequence[str] | None = None, validation_split: float = 0.2,
                   batch_size: int = 32, augment: object = "none", seed: int | None = 0,
                   threshold: float = 0.5) -> Data:
    """A multi-label `Data` set from a CSV of `file,labels` rows.

    Each row names an image file and its labels, separated by a space, "|", ";" or ","
    (`a.jpg,cat dog`, `a.jpg,cat|dog`, `a.jpg,"cat; dog"`, `a.jpg,"cat, dog"`); a header
    row (`file,labels`) is skipped. A file named on several lines is one example per
    line, said in a warning. Files are decoded, turned upright by their EXIF orientation and resized
    in the pipeline (as `image_folder` does).

    Args:
        path: the CSV file.
        images_dir: the folder the file names are relative to. Defaults to the CSV's.
        image_size: `(height, width)` of the examples. Defaults to (224, 224).
        class_names: the classes in id order. Defaults to the sorted labels seen.
        validation_split, batch_size, augment, seed, threshold: as in
            `multilabel_from_lists`.

    Returns:
        A `Data` of the "multilabel" task.

    Raises:
        ValueError: for rows with more than two columns, mixed separators, unknown
            labels, or files that are missing or cannot be decoded (all named, with
            their line numbers).
    """
    from visionkit.data.decoding import FileDecoder
    from visionkit.data.files import scan_image_files
    path = os.fspath(path)
    folder = os.fspath(images_dir) if images_dir is not None else \
        os.path.dirname(os.path.abspath(path))
    rows = _read_rows(path)
    separator = _separator(rows, path)
    files = [os.path.join(folder, name) for _, name, _ in rows]
    _warn_repeated_files(rows, files, path)
    missing = [(n, name) for (n, name, _), file in zip(rows, files) if not os.path.isfile(file)]
    if missing:
        raise ValueError(f"{len(missing)} file(s) named in {path} do not exist in {folder}: "
                         f"{[f'line {n}: {name}' for n, name in missing[:5]]}.")
    scan = scan_image_files(files)
    if scan.bad:
        raise ValueError(f"{len(scan.bad)} image file(s) named in {path} cannot be used: "
                         f"{scan.bad[:5]}.")
    label_lists = [[label.strip() for label in labels.split(separator) if label.strip()]
                   for _, _, labels in rows]
    matrix, names = multi_hot(label_lists, class_names)
    train, val = _split(len(files), validation_split, seed)
    paths = np.asarray(files, dtype=object).astype(str)
    orientations = scan.orientation_array(files)
    size = (int(image_size[0]), int(image_size[1]))

    def finish(record: dict, image: tf.Tensor, window: tf.Tensor, source_size) -> dict:
        return {"images": image, "labels": record["labels"]}

    # The one pixel path (EXIF orientation from the bytes, antialiased resize), which an
    # export made with this data set bakes into its signatures.
    decoder = FileDecoder("paths", size, finish, preprocessing=Preprocessing(size))

    def records(rows_: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({"paths": paths[rows_],
                                                   "labels": matrix[rows_],
                                                   "orientations": orientations[rows_]})

    val_examples = records(val).map(decoder, num_parallel_calls=tf.data.AUTOTUNE) \
        if len(val) else None
    return Data(task=get_task("multilabel", threshold=threshold), class_names=names, image_size=size,
                train_examples=records(train).map(decoder, num_parallel_calls=tf.data.AUTOTUNE),
                val_examples=val_examples, train_size=len(train), val_size=len(val),
                batch_size=batch_size, augment=augment, seed=seed,
                train_records=records(train), decode=decoder)
