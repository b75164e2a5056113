"""`yolo`: a detection data set from YOLO txt labels (class cx cy w h, normalized)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from visionkit.data.annotations import AnnotatedImage, build_detection_data
from visionkit.data.boxes import cxcywh_to_xyxy
from visionkit.data.files import DEFAULT_MAX_IMAGE_PIXELS, list_image_files
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError

__all__ = ["yolo"]

# Names files tried in this order when none is given.
_NAMES_FILES = ("classes.txt", "obj.names", "names.txt")


def yolo(root: str | os.PathLike, image_size: tuple[int, int] = (320, 320),
         names: str | os.PathLike | Sequence[str] | None = None, images_dir: str = "images",
         labels_dir: str = "labels", validation_split: float = 0.2, batch_size: int = 16,
         augment: object = "none", seed: int | None = 0, max_boxes: int | None = None,
         cache: bool | str = False,
         max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Data:
    """A detection data set in YOLO's txt format.

    Every image in `root/images/` may have `root/labels/<stem>.txt`, one object per
    line: `class_id cx cy width height`, the box centre and size as fractions of the
    image's width and height. An image without a label file has no objects. Class names
    come from a names file (one per line).

    Args:
        root: the data folder.
        image_size: `(height, width)` images are resized to. Defaults to (320, 320).
        names: a names file (relative to `root` or absolute) or the list of names.
            Defaults to the first of classes.txt, obj.names, names.txt in `root`.
        images_dir, labels_dir: sub-folders of `root`. Defaults to "images", "labels".
        validation_split, batch_size, augment, seed, max_boxes, cache,
            max_image_pixels: as for `coco`.

    Returns:
        A detection `Data` set.

    Raises:
        BadFileError: for a label or names file that is not UTF-8 text, or for images
            that do not decode.
        DataError: for a missing names file, a malformed line, a non-finite number or an
            unknown class id (naming the file and line), a degenerate box, or no image.
            An image without a label file, or with an empty one, is kept (background).

    Example:

    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("images", "labels"): os.makedirs(os.path.join(root, sub))
    >>> Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(
    ...     os.path.join(root, "images", "a.png"))
    >>> with open(os.path.join(root, "labels", "a.txt"), "w") as f:
    ...     _ = f.write("0 0.35 0.35 0.5 0.5\\n")
    >>> data = yolo(root, image_size=(40, 60), names=["cat"], validation_split=0)
    >>> np.round(next(iter(data.train_examples))["bounding_boxes"]["boxes"].numpy(), 3).tolist()
    [[6.0, 4.0, 36.0, 24.0]]
    """
    root = os.fspath(root)
    class_names = _names(root, names)
    folder = os.path.join(root, images_dir)
    if not os.path.isdir(folder):
        raise DataError(f"Expected YOLO images in {folder!r}; the folder does not exist.")
    images = []
    for path in list_image_files(folder):
        stem = os.path.splitext(os.path.relpath(path, folder))[0]
        label_file = os.path.join(root, labels_dir, stem + ".txt")
        boxes, labels = _read_labels(label_file, len(class_names))
        images.append(AnnotatedImage(path=path, boxes=boxes, labels=labels, size=(1.0, 1.0),
                                     source=label_file))
    if not images:
        raise DataError(f"No images found in {folder!r}.")
    return build_detection_data(images, class_names, root, image_size, validation_split,
                                batch_size, augment, seed, max_boxes, cache,
                                max_image_pixels=max_image_pixels)


def _names(root: str, names: str | os.PathLike | Sequence[str] | None) -> list[str]:
    if names is not None and not isinstance(names, (str, os.PathLike)):
        return [str(name) for name in names]
    candidates = [os.fspath(names)] if names is not None else list(_NAMES_FILES)
    for candidate in candidates:
        path = candidate if os.path.isabs(candidate) else os.path.join(root, candidate)
        if os.path.isfile(path):
            found = [line.strip() for line in _text_lines(path, "a names file")
                     if line.strip()]
            if not found:
                raise DataError(f"The names file {path!r} is empty; expected one class name "
                                "per line.")
            return found
    raise DataError(f"No YOLO names file found in {root!r}: expected one of {candidates} "
                    "(one class name per line), or pass names=[...].")


def _text_lines(path: str, what: str) -> list[str]:
    """The lines of a UTF-8 text file; other bytes are a `BadFileError` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except UnicodeDecodeError as error:
        raise BadFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start})",
                           expected=what) from None


def _read_labels(file: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(file):
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)
    boxes, labels = [], []
    for number, line in enumerate(_text_lines(file, "a YOLO label file"), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            class_id = int(fields[0])
            values = [float(v) for v in fields[1:]]
        except ValueError:
            values = []
            class_id = -1
        if len(values) != 4:
            raise DataError(f"{file} line {number}: expected 'class_id cx cy width "
                            f"height' (5 numbers); received {line.strip()!r}.")
        if not np.all(np.isfinite(values)):
            raise DataError(f"{file} line {number}: expected finite numbers; received "
                            f"{line.strip()!r}.")
        if not 0 <= class_id < num_classes:
            raise DataError(f"{file} line {number}: unknown class id {class_id}; the "
                            f"names file lists {num_classes} classes (0..{num_classes - 1}).")
        boxes.append(cxcywh_to_xyxy(np.asarray(values, np.float32))[0])
        labels.append(class_id)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int32)
