"""What the COCO, Pascal VOC and YOLO readers share: safe paths, checked boxes, warnings.

A reader turns an annotation format into `AnnotatedImage`s (image path, xyxy pixel
boxes in the image's own size, class ids); `build_detection_data` checks them (images
inside the root, present on disk, boxes clipped or refused) and hands them to
`detection_from_files`.

Example:

>>> resolve_inside("/data/images", "cats/a.jpg")
'/data/images/cats/a.jpg'
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence

import numpy as np

from visionkit.data.boxes import BoxReport, check_boxes
from visionkit.data.detection import detection_from_files
from visionkit.data.files import DEFAULT_MAX_IMAGE_PIXELS, find_bad_files
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError, DataWarning

__all__ = ["AnnotatedImage", "build_detection_data", "resolve_inside"]


@dataclasses.dataclass
class AnnotatedImage:
    """One image and its boxes as an annotation file describes them.

    Attributes:
        path: the image file (absolute, checked to lie inside the images root).
        boxes: float `[k, 4]` xyxy pixels of the image at `size`.
        labels: int `[k]` class ids.
        size: `(height, width)` the boxes refer to, or None to read it from the file.
        source: the annotation file (and entry) named in messages.
    """

    path: str
    boxes: np.ndarray
    labels: np.ndarray
    size: tuple[float, float] | None
    source: str


def resolve_inside(root: str, relative: str, where: str | None = None) -> str:
    """The absolute path of `relative` under `root`.

    Args:
        root: the images root.
        relative: the path an annotation file gives.
        where: the annotation entry, named in the message. Defaults to None.

    Raises:
        DataError: if the path is absolute, climbs out of `root` (through `..` or a
            symbolic link) or holds a NUL character, naming `where` and the path.
    """
    prefix = f"{where}: " if where else ""
    if "\0" in relative:
        raise DataError(f"{prefix}image path {relative!r} holds a NUL character; refusing "
                        "to read it.")
    root_abs = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(root_abs, relative))
    if os.path.isabs(relative) or os.path.commonpath([root_abs, candidate]) != root_abs:
        raise DataError(f"{prefix}image path {relative!r} points outside the images root "
                        f"{root!r}; refusing to read it. Expected paths relative to the root.")
    return candidate


def _image_size(path: str) -> tuple[float, float]:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return float(height), float(width)


def build_detection_data(images: Sequence[AnnotatedImage], class_names: Sequence[str],
                         source: str, image_size: tuple[int, int], validation_split: float,
                         batch_size: int, augment: object, seed: int | None,
                         max_boxes: int | None, cache: bool | str,
                         max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Data:
    """Checks annotated images and builds the `Data` set.

    Images missing on disk are left out with one counted `DataWarning`; images that do
    not decode raise a `BadFileError` listing them; boxes reaching
    beyond their image are clipped and boxes wholly outside it dropped, with one counted
    warning; degenerate boxes raise a `DataError` naming the file and box.

    Raises:
        BadFileError: for images that do not decode completely (all of them named).
        DataError: when no image is left, or for a degenerate box.
    """
    missing: list[str] = []
    report = BoxReport()
    paths, boxes, labels = [], [], []
    present = []
    for item in sorted(images, key=lambda entry: entry.path):
        if os.path.isfile(item.path):
            present.append(item)
        else:
            missing.append(item.path)
    # Every listed image must decode, so no error surfaces later inside tf.data.
    bad = find_bad_files([item.path for item in present], max_image_pixels=max_image_pixels)
    if bad:
        raise BadFileError(bad[0][0], bad[0][1], others=bad[1:])
    for item in present:
        size = item.size or _image_size(item.path)
        if size[0] <= 0 or size[1] <= 0:
            raise DataError(f"{item.source}: image size must be positive; received "
                            f"(height, width)={size}.")
        checked, keep = check_boxes(item.boxes, size, item.source, report)
        height, width = size
        paths.append(item.path)
        boxes.append(checked[keep] / np.array([width, height, width, height], np.float32))
        labels.append(np.asarray(item.labels, np.int32)[keep])
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        warnings.warn(f"{source}: {len(missing)} image(s) listed in the annotations are "
                      f"missing on disk and were left out (e.g. {shown}).", DataWarning,
                      stacklevel=3)
    message = report.message(source)
    if message:
        warnings.warn(message, DataWarning, stacklevel=3)
    if not paths:
        raise DataError(f"{source}: no annotated image found on disk; expected at least one.")
    return detection_from_files(paths, boxes, labels, class_names, image_size,
                                validation_split=validation_split, batch_size=batch_size,
                                augment=augment, seed=seed, max_boxes=max_boxes, cache=cache)
