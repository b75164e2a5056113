"""Annotations checked against the image files, and what is left out said once per reason.

Annotation files declare things about images that the files themselves decide: their
size (COCO `width`/`height`, VOC `<size>`), their orientation (a camera's EXIF tag turns
the displayed image, and annotation tools label the displayed one) and the range of
normalised coordinates (YOLO). This module reads each image's header with PIL when the
data set is built (not in the training pipeline), compares, and either raises an error
naming the image and both values or, where the user asked for it, leaves the annotation
out and counts it.

`Problems` collects what a reader left out or changed: one `DataWarning` per reason,
with the count and a few examples, at the end of reading.

Example:

>>> parse_number(" 1.5e2 "), parse_number("+3"), parse_class_id("2.0")
(150.0, 3.0, 2)
>>> problems = Problems("labels/")
>>> problems.note("polygon lines read as their bounding boxes", "a.txt line 3")
>>> problems.counts()
{'polygon lines read as their bounding boxes': 1}
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Collection

import numpy as np

from visionkit.data.files import CaseInsensitiveFiles
from visionkit.errors import DataError, DataWarning

__all__ = ["ON_BAD_ANNOTATION", "Problems", "ImageHeader", "read_header", "parse_number",
           "parse_class_id", "reconcile_size", "check_on_bad_annotation",
           "check_repeated_names", "find_ignoring_case"]

# What a reader does with a broken annotation: raise naming it, or leave it out (counted).
ON_BAD_ANNOTATION = ("error", "skip")
# Examples listed per reason in a warning.
EXAMPLES_PER_REASON = 3
# The EXIF tag holding the orientation (values 1..8; 5..8 turn the image by 90 degrees).
EXIF_ORIENTATION_TAG = 0x0112


def check_on_bad_annotation(value: str) -> str:
    if value not in ON_BAD_ANNOTATION:
        raise ValueError(f"Expected on_bad_annotation to be one of {ON_BAD_ANNOTATION}; "
                         f"received on_bad_annotation={value!r}.")
    return value


class Problems:
    """Counts what a reader left out or changed, per reason, with examples.

    Args:
        source: names the data set in the warnings.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._counts: dict[str, int] = {}
        self._examples: dict[str, list[str]] = {}

    def note(self, reason: str, example: str) -> None:
        """Counts one occurrence of `reason`; keeps the first few examples."""
        self._counts[reason] = self._counts.get(reason, 0) + 1
        shown = self._examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(example)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def examples(self, reason: str) -> list[str]:
        return list(self._examples.get(reason, []))

    def messages(self) -> list[str]:
        return [f"{self.source}: {count} {reason} (e.g. {'; '.join(self._examples[reason])})."
                for reason, count in self._counts.items()]

    def warn(self, stacklevel: int = 3) -> None:
        """One `DataWarning` per reason."""
        for message in self.messages():
            warnings.warn(message, DataWarning, stacklevel=stacklevel)


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """An image file's size as stored and as displayed (after its EXIF orientation).

    Attributes:
        stored: `(height, width)` of the pixels in the file.
        orientation: EXIF orientation 1..8 (1 when absent).
    """

    stored: tuple[int, int]
    orientation: int

    @property
    def displayed(self) -> tuple[int, int]:
        """`(height, width)` as an image viewer shows it (orientations 5..8 swap sides)."""
        height, width = self.stored
        return (width, height) if self.orientation >= 5 else (height, width)


def read_header(path: str) -> ImageHeader:
    """The header of one image (size and EXIF orientation), without decoding pixels."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        try:
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
        except Exception:  # noqa: BLE001  (a damaged EXIF block leaves the image as stored)
            orientation = 1
    if not (isinstance(orientation, int) and 1 <= orientation <= 8):
        orientation = 1
    return ImageHeader((int(height), int(width)), orientation)


def parse_number(text) -> float:
    """A number as annotation writers produce it: `12`, `12.0`, `1.2e1`, `+12`, ` 12 `,
    `12.` or `.5`; also a JSON number. Raises `ValueError` for anything else (including
    NaN and infinities)."""
    if isinstance(text, bool):
        raise ValueError(f"expected a number; received {text!r}")
    value = float(text.strip()) if isinstance(text, str) else float(text)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number; received {text!r}")
    return value


def parse_class_id(text) -> int:
    """A class id: an integer, also written as an integral float (`2.0`, `2.000000`, as
    some converters write it). Raises `ValueError` for a fraction or non-number."""
    value = parse_number(text)
    if value != int(value):
        raise ValueError(f"expected an integer class id; received {text!r}")
    return int(value)


def reconcile_size(declared: tuple[float, float] | None, header: ImageHeader, where: str,
                   image: str, trust_file_size: bool, problems: Problems
                   ) -> tuple[tuple[float, float], bool]:
    """The `(height, width)` an image's boxes refer to, and whether to turn the image
    upright by its EXIF orientation.

    - No declared size, or a zero side (VOC writers leave `<size>` at 0): the displayed
      size of the file (a zero side is counted in `problems`).
    - Declared = displayed size: the annotation describes the displayed image.
    - Declared = stored size of an EXIF-turned image: the annotation describes the
      pixels as stored; the caller turns its boxes with the image
      (`boxes_as_displayed`), so every image is read upright.
    - Anything else (e.g. width and height swapped): a `DataError` naming the image and
      both sizes, or with `trust_file_size` the file's displayed size (counted).

    Raises:
        DataError: for a declared size that matches the file in neither orientation.
    """
    displayed = tuple(float(v) for v in header.displayed)
    stored = tuple(float(v) for v in header.stored)
    if declared is None:
        return displayed, True
    declared = (float(declared[0]), float(declared[1]))
    if declared[0] == 0 or declared[1] == 0:
        problems.note("images whose annotation declares a size of 0 measured from the file",
                      f"{where} ({image!r})")
        return displayed, True
    if declared == displayed:
        if displayed == stored and header.orientation != 1:
            # Orientations 2-4 (and 5-8 of square images) keep the sides: the size
            # cannot tell, and annotation tools label what a viewer shows.
            problems.note("EXIF-turned images whose declared size fits both the stored "
                          "and the displayed image (boxes read as displayed)",
                          f"{where} ({image!r}, orientation {header.orientation})")
        return displayed, True
    if declared == stored:
        problems.note("EXIF-turned images annotated as stored (their boxes are turned "
                      "upright with the image)",
                      f"{where} ({image!r})")
        return stored, False
    swapped = declared == (displayed[1], displayed[0])
    hint = (" (width and height are swapped)" if swapped else "")
    if trust_file_size:
        problems.note("images whose declared size differs from the file (file size used, "
                      "trust_file_size=True)",
                      f"{where}: declared {_hw(declared)}, file {_hw(displayed)}")
        return displayed, True
    raise DataError(f"{where}: the annotation declares image {image!r} as {_hw(declared)} "
                    f"but the file is {_hw(displayed)}{hint}. Expected the declared size to "
                    "match the file; fix the annotation, or pass trust_file_size=True to "
                    "read boxes against the file's size.")


def _hw(size: tuple[float, float]) -> str:
    return f"width {size[1]:g} x height {size[0]:g}"


def raise_or_note(on_bad_annotation: str, problems: Problems, reason: str, example: str,
                  message: str) -> None:
    """Raises `DataError(message)` or, with `on_bad_annotation="skip"`, counts `reason`."""
    if on_bad_annotation == "skip":
        problems.note(reason + " left out (on_bad_annotation='skip')", example)
        return
    raise DataError(message + " Pass on_bad_annotation='skip' to leave such annotations "
                              "out (counted in a warning).")


def boxes_as_displayed(boxes: np.ndarray, orientation: int) -> np.ndarray:
    """Boxes given as fractions of the stored pixels, moved to the displayed image.

    The EXIF orientation tag (1..8, TIFF 6.0 / Exif 2.32 section 4.6.4) says how a viewer
    turns the stored pixels; this applies the same turn to xyxy boxes, as PIL's
    `ImageOps.exif_transpose` does to the pixels.

    Args:
        boxes: float `[k, 4]` xyxy, fractions (0..1) of the stored width and height.
        orientation: the image's EXIF orientation, 1..8.

    Returns:
        float `[k, 4]` xyxy fractions of the displayed image (sides swapped for 5..8).

    Example:

    >>> boxes_as_displayed(np.array([[0.1, 0.2, 0.3, 0.6]]), 6).round(3).tolist()
    [[0.4, 0.1, 0.8, 0.3]]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x = boxes[:, [0, 2]]
    y = boxes[:, [1, 3]]
    new_x, new_y = {1: (x, y), 2: (1 - x, y), 3: (1 - x, 1 - y), 4: (x, 1 - y),
                    5: (y, x), 6: (1 - y, x), 7: (1 - y, 1 - x), 8: (y, 1 - x)}[
        int(orientation)]
    return np.stack([new_x.min(1), new_y.min(1), new_x.max(1), new_y.max(1)], axis=1)


def check_repeated_names(names, labels_used, source: str, problems: Problems,
                         what: str = "class ids") -> None:
    """Refuses two classes of one name that both have objects; counts the others.

    Merged exports (two COCO files, each numbering its categories) repeat a name under
    two ids: read as two classes, the model must tell "cat" from "cat". When at most one
    of them is used (a Roboflow export's category 0, the data set's name, can equal a
    class's), it is said, not refused.

    Args:
        names: the class names, by class id.
        labels_used: the class ids objects use.
        source: names the data set in the error.
        problems: where a repeated but unused name is counted.
        what: how the error calls the ids.

    Raises:
        DataError: naming the name and its ids, when two of those ids have objects.
    """
    used = {int(label) for label in labels_used}
    ids: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        ids.setdefault(str(name), []).append(index)
    for name, indices in ids.items():
        if len(indices) < 2:
            continue
        with_objects = [index for index in indices if index in used]
        if len(with_objects) > 1:
            raise DataError(f"{source}: the class name {name!r} is given to {what} "
                            f"{indices}, and {with_objects} all have objects; expected one "
                            "class per name. Merge those categories into one id (or "
                            "rename one) in the annotations.")
        problems.note("class names given to more than one class id (only one has objects)",
                      f"{name!r} ids {indices}")


def find_ignoring_case(files: CaseInsensitiveFiles, path: str, where: str, what: str,
                       problems: Problems, exclude: Collection[str] = ()) -> str | None:
    """The one file whose path differs from the missing `path` only in letter case.

    Args:
        files: the reader's `CaseInsensitiveFiles` (one per data set: folders are listed
            once).
        path: the path an annotation names, not on disk as written.
        where: the annotation entry (file, line or index), named in the error.
        what: what the annotation calls it ("file_name", "<filename>", "label file").
        problems: where a match is counted ("said once with examples").
        exclude: files that belong to another entry as written (never taken).

    Returns:
        The matching file, or None when no file matches.

    Raises:
        DataError: naming `where` and the candidates when several files match (a disk
            that holds both `a.jpg` and `A.jpg`: which one was meant cannot be told).
    """
    excluded = {os.path.normpath(other) for other in exclude}
    found = [match for match in files.matches(path) if match not in excluded]
    if len(found) > 1:
        raise DataError(f"{where}: {what} {os.path.basename(path)!r} is not on disk as "
                        f"written, and {len(found)} files differ from it only in letter "
                        f"case: {found[:5]}; expected one. Rename the files or correct the "
                        "annotation.")
    if not found:
        return None
    problems.note(f"{what}s matched to the one file that differs only in letter case "
                  "(annotations made on a case-insensitive disk)",
                  f"{where}: {os.path.basename(path)!r} -> {found[0]!r}")
    return found[0]
