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

from visionkit.data.annotation_checks import (
    Problems,
    boxes_as_displayed,
    check_on_bad_annotation,
    find_ignoring_case,
    raise_or_note,
    read_header,
    reconcile_size,
)
from visionkit.data.boxes import BoxReport, check_boxes
from visionkit.data.detection import detection_from_files
from visionkit.data.files import DEFAULT_MAX_IMAGE_PIXELS, CaseInsensitiveFiles, find_bad_files
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError, DataWarning

__all__ = ["AnnotatedImage", "build_detection_data", "find_image_path", "resolve_inside",
           "warn_shared_files"]


@dataclasses.dataclass
class AnnotatedImage:
    """One image and its boxes as an annotation file describes them.

    Attributes:
        path: the image file (absolute, checked to lie inside the images root).
        boxes: float `[k, 4]` xyxy pixels of the image at `size`.
        labels: int `[k]` class ids.
        size: `(height, width)` the boxes refer to, or None to read it from the file.
        source: the annotation file (and entry) named in messages.
        split: the split the user gave this image ("train", "val", "test"), or None.
        normalized: boxes are fractions of the image's width and height (YOLO), so no
            declared size is compared with the file.
    """

    path: str
    boxes: np.ndarray
    labels: np.ndarray
    size: tuple[float, float] | None
    source: str
    split: str | None = None
    normalized: bool = False


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


def find_image_path(images_dir: str, file_name: str, where: str, what: str,
                    problems: Problems, files: CaseInsensitiveFiles) -> str:
    """The file an annotation names (a COCO `file_name`, a VOC `<filename>`) under
    `images_dir`: the name as written when that file exists. Otherwise, each way counted
    in `problems` (a warning with examples): a name written on Windows (`train\\a.jpg`)
    is read with its folders; a name that repeats the end of `images_dir`
    (`JPEGImages/a.jpg` with `images_dir=".../JPEGImages"`, as labelme2coco and some
    exporters write it) is found without the repeated folders; then the one file whose
    path differs from either only in letter case (`IMG_001.JPG` for `img_001.jpg`,
    annotated on a Windows or macOS disk). Failing all, the path under `images_dir`,
    which does not exist.

    Args:
        images_dir: the folder names are relative to.
        file_name: the name the annotation gives.
        where: the annotation entry ("instances.json images[3] (id 7)", "a.xml").
        what: the field holding the name ("file_name", "<filename>"), named with `where`.
        problems: the reader's `Problems`.
        files: the reader's `CaseInsensitiveFiles` (one per data set).

    Returns:
        str: the absolute path (inside `images_dir`).

    Raises:
        DataError: for a path outside `images_dir` (see `resolve_inside`), or a name that
            several files match but for letter case (`a.jpg` and `A.jpg` on disk for
            `A.JPG`), naming `where` and the candidates.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "img_001.jpg"), "w").close()
    >>> found = find_image_path(folder, "IMG_001.JPG", "a.xml", "<filename>",
    ...                         Problems(folder), CaseInsensitiveFiles())
    >>> os.path.basename(found)
    'img_001.jpg'
    """
    field = f"{where} {what}"
    path = resolve_inside(images_dir, file_name, where=field)
    if os.path.isfile(path):
        return path
    parts = [part for part in file_name.replace("\\", "/").split("/") if part not in ("", ".")]
    if "\\" in file_name and os.sep == "/":  # written on Windows: "train\\a.jpg"
        candidate = resolve_inside(images_dir, "/".join(parts), where=field)
        if os.path.isfile(candidate):
            problems.note(f"{what}s with Windows '\\' separators read as folders",
                          f"{file_name!r} -> {candidate!r}")
            return candidate
    folders = os.path.normpath(os.path.abspath(images_dir)).split(os.sep)
    for count in range(len(parts) - 1, 0, -1):
        if folders[-count:] == parts[:count]:
            candidate = resolve_inside(images_dir, "/".join(parts[count:]), where=field)
            if os.path.isfile(candidate):
                problems.note(f"{what}s repeating the end of images_dir found without "
                              "the repeated folders", f"{file_name!r} -> {candidate!r}")
                return candidate
    folded = [folder.lower() for folder in folders]
    relatives = ["/".join(parts)] + [
        "/".join(parts[count:]) for count in range(len(parts) - 1, 0, -1)
        if folded[-count:] == [part.lower() for part in parts[:count]]]
    for relative in relatives:
        found = find_ignoring_case(files, resolve_inside(images_dir, relative, where=field),
                                   where, what, problems)
        if found is not None:
            return resolve_inside(images_dir, os.path.relpath(
                found, os.path.realpath(images_dir)), where=field)
    return path


def build_detection_data(images: Sequence[AnnotatedImage], class_names: Sequence[str],
                         source: str, image_size: tuple[int, int], validation_split: float,
                         batch_size: int, augment: object, seed: int | None,
                         max_boxes: int | None, cache: bool | str,
                         max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
                         on_bad_annotation: str = "error", trust_file_size: bool = False,
                         problems: Problems | None = None) -> Data:
    """Checks annotated images against their files and builds the `Data` set.

    Images missing on disk are left out with one counted `DataWarning`; images that do
    not decode raise a `BadFileError` listing them. Each image's declared size is
    compared with its header (see `reconcile_size`): EXIF-turned images annotated as
    displayed are turned upright in the pipeline. Boxes reaching beyond their image are
    clipped and boxes wholly outside it dropped, with one counted warning; degenerate
    (zero-area or inverted) boxes raise a `DataError` naming the file and box, or with
    `on_bad_annotation="skip"` are left out and counted. When every image carries the
    split the user gave, that split is used exactly (a `test` split becomes `Data.test`);
    otherwise a seeded random `validation_split` is held out and that is printed.

    Raises:
        BadFileError: for images that do not decode completely (all of them named).
        DataError: when no image is left, for a degenerate box, or for a declared size
            that differs from the file's.
    """
    check_on_bad_annotation(on_bad_annotation)
    problems = problems if problems is not None else Problems(source)
    missing: list[str] = []
    report = BoxReport()
    paths, boxes, labels, splits, orientations = [], [], [], [], []
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
        header = read_header(item.path)
        if item.normalized:
            size, turn = (1.0, 1.0), True
        else:
            try:
                size, turn = reconcile_size(item.size, header, item.source,
                                            os.path.basename(item.path), trust_file_size,
                                            problems)
            except DataError as error:
                raise_or_note(on_bad_annotation, problems,
                              "images whose declared size differs from the file",
                              str(error).split(". Expected")[0], str(error))
                continue
        item_boxes = np.asarray(item.boxes, np.float64).reshape(-1, 4)
        item_labels = np.asarray(item.labels, np.int32).reshape(-1)
        if on_bad_annotation == "skip" and len(item_boxes):
            degenerate = ~np.all(np.isfinite(item_boxes), axis=1) | \
                (item_boxes[:, 2] <= item_boxes[:, 0]) | (item_boxes[:, 3] <= item_boxes[:, 1])
            for index in np.flatnonzero(degenerate):
                problems.note("zero-area or inverted boxes left out (on_bad_annotation="
                              "'skip')", f"{item.source} box {index} "
                              f"{item_boxes[index].tolist()}")
            item_boxes, item_labels = item_boxes[~degenerate], item_labels[~degenerate]
        checked, keep = check_boxes(item_boxes, size, item.source, report)
        height, width = size
        paths.append(item.path)
        fractions = checked[keep] / np.array([width, height, width, height], np.float32)
        if not turn:  # annotated as stored: the boxes turn upright with the image
            fractions = boxes_as_displayed(fractions, header.orientation).astype(np.float32)
        boxes.append(fractions)
        labels.append(item_labels[keep])
        splits.append(item.split)
        orientations.append(header.orientation)
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        warnings.warn(f"{source}: {len(missing)} image(s) listed in the annotations are "
                      f"missing on disk and were left out (e.g. {shown}).", DataWarning,
                      stacklevel=3)
    message = report.message(source)
    if message:
        warnings.warn(message, DataWarning, stacklevel=3)
    problems.warn(stacklevel=3)
    if not paths:
        raise DataError(f"{source}: no annotated image found on disk; expected at least one.")
    given = splits if all(split is not None for split in splits) else None
    if given is not None:
        warn_shared_files(paths, given, source)
    if given is not None and "train" not in given:
        raise DataError(f"{source}: the given splits hold no training image; received "
                        f"splits {sorted(set(given))}.")
    return detection_from_files(paths, boxes, labels, class_names, image_size,
                                validation_split=validation_split, batch_size=batch_size,
                                augment=augment, seed=seed, max_boxes=max_boxes, cache=cache,
                                splits=given, orientations=orientations, source=source)


def warn_shared_files(paths: Sequence[str], splits: Sequence[str], source: str) -> None:
    """One `DataWarning` counting the image files the given splits share (e.g. a YOLO
    `data.yaml` whose `train` list also holds its `val` folder): such validation or test
    scores measure images the model trained on. Files are compared by real path (links
    resolved); the same pixels under two names are `data check`'s to find."""
    seen: dict[str, set[str]] = {}
    for path, split in zip(paths, splits):
        seen.setdefault(os.path.realpath(path), set()).add(split)
    shared = {path: sorted(found) for path, found in seen.items() if len(found) > 1}
    if shared:
        shown = ", ".join(f"{path!r} ({' and '.join(found)})"
                          for path, found in list(shared.items())[:3])
        warnings.warn(f"{source}: {len(shared)} image file(s) are in more than one of the "
                      f"given splits (e.g. {shown}); scores on a split that shares files "
                      "with train measure images the model trained on.", DataWarning,
                      stacklevel=4)
