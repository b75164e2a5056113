"""`voc`: a detection data set from Pascal VOC XML annotations."""

from __future__ import annotations

import glob
import os
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

import numpy as np

from visionkit.data.annotation_checks import Problems, check_on_bad_annotation, parse_number
from visionkit.data.annotations import AnnotatedImage, build_detection_data, find_image_path
from visionkit.data.files import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_EXTENSIONS,
    CaseInsensitiveFiles,
    is_hidden,
)
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError, DataWarning

__all__ = ["voc"]

_EXPECTED = "a Pascal VOC annotation (XML with <filename> and <object><bndbox>)"


def voc(root: str | os.PathLike, image_size: tuple[int, int] = (320, 320),
        class_names: Sequence[str] | None = None, annotations_dir: str = "Annotations",
        images_dir: str = "JPEGImages", validation_split: float = 0.2, batch_size: int = 16,
        augment: object = "none", seed: int | None = 0, max_boxes: int | None = None,
        cache: bool | str = False, skip_difficult: bool = False,
        max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
        image_sets: str | None = "ImageSets/Main", on_bad_annotation: str = "error",
        trust_file_size: bool = False) -> Data:
    """A detection data set from a Pascal VOC folder, split by its ImageSets lists.

    When `root/ImageSets/Main/train.txt` exists, it and `val.txt` / `test.txt` (one
    image id per line) are the splits, used exactly; annotations listed in none of them
    are left out and counted. Without them a seeded random `validation_split` is held
    out (printed). A `<size>` of 0 (some writers leave it so) is read from the file; a
    declared size that differs from the file is an error naming both (or, with
    `trust_file_size=True`, the file's size is used); a `<filename>` written on Windows
    (`sub\\a.jpg`) or repeating the images folder (`JPEGImages/a.jpg`) is found as `coco`
    finds such names (said in a warning); a `<filename>` without an
    extension, or with another extension than the one image of that stem on disk (an
    image converted after annotating), resolves to that image, and one that differs
    from the file on disk only in letter case (`IMG_001.JPG` for `img_001.jpg`, written
    on a Windows or macOS disk) is read as that file when it is the only one (both said
    in a warning; the exact name always first).

    Reads every `root/Annotations/*.xml` (the extension in any case; hidden files are
    skipped and other files counted in a warning) (`<filename>`, optional `<size>`, and per
    `<object>` its `<name>` and `<bndbox>` `xmin ymin xmax ymax`); images are read from
    `root/JPEGImages/`. VOC coordinates are 1-based inclusive pixel indices, so a box
    becomes `(xmin - 1, ymin - 1, xmax, ymax)` in pixel-edge coordinates.

    Args:
        root: the VOC folder.
        image_size: `(height, width)` images are resized to. Defaults to (320, 320).
        class_names: the classes in id order; an object with another name is an error.
            Defaults to the names found, sorted (names differing only in case, 'Cat'
            and 'cat', are said in a `DataWarning`).
        annotations_dir, images_dir: sub-folders of `root`. Defaults to "Annotations"
            and "JPEGImages".
        validation_split, batch_size, augment, seed, max_boxes, cache: as for `coco`.
        skip_difficult: leave out objects marked `<difficult>1</difficult>` (counted).
            Defaults to False.
        image_sets: the folder of split lists under `root`, or None to ignore them.
            Defaults to "ImageSets/Main".
        on_bad_annotation: "error" or "skip" (see `coco`). Defaults to "error".
        trust_file_size: as for `coco`. Defaults to False.
        max_image_pixels: largest width x height accepted (checked from the header
            before decoding), or None for no limit. Defaults to 89,478,485.

    Returns:
        A detection `Data` set.

    Raises:
        BadFileError: for a file that is not valid XML or lacks the VOC elements (or
            holds a non-finite number), or for images that do not decode.
        DataError: for an unknown class name, a degenerate box, a `<filename>` that is
            absolute, climbs out of the images folder or matches several files but for
            letter case (naming the XML file), or no
            image on disk. An annotation without objects keeps its image (background).

    Example:

    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("Annotations", "JPEGImages"): os.makedirs(os.path.join(root, sub))
    >>> Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(
    ...     os.path.join(root, "JPEGImages", "a.png"))
    >>> xml = ("<annotation><filename>a.png</filename><object><name>cat</name><bndbox>"
    ...        "<xmin>7</xmin><ymin>5</ymin><xmax>36</xmax><ymax>24</ymax>"
    ...        "</bndbox></object></annotation>")
    >>> with open(os.path.join(root, "Annotations", "a.xml"), "w") as f: _ = f.write(xml)
    >>> data = voc(root, image_size=(40, 60), validation_split=0)
    >>> next(iter(data.train_examples))["bounding_boxes"]["boxes"].numpy().tolist()
    [[6.0, 4.0, 36.0, 24.0]]
    """
    check_on_bad_annotation(on_bad_annotation)
    root = os.fspath(root)
    problems = Problems(root)
    folder = os.path.join(root, annotations_dir)
    files = _annotation_files(folder, problems)
    if not files:
        raise DataError(f"No Pascal VOC annotations found: expected XML files in {folder!r}.")
    stems = {os.path.splitext(os.path.basename(f))[0] for f in files}
    split_of = _image_sets(root, image_sets, folder, stems) if image_sets else None
    if split_of is not None:
        unlisted = [f for f in files if os.path.splitext(os.path.basename(f))[0] not in split_of]
        for file in unlisted:
            problems.note("annotations listed in no ImageSets split left out", file)
        files = [f for f in files if f not in set(unlisted)]
    parsed = [_parse(file) for file in files]
    names = list(class_names) if class_names is not None else sorted(
        {name for _, _, objects in parsed for name, _, _ in objects})
    if class_names is None:
        _warn_names_differing_in_case(parsed, root)
    class_of = {name: index for index, name in enumerate(names)}
    images = []
    image_folder = os.path.join(root, images_dir)
    case_folding = CaseInsensitiveFiles()
    for file, (file_name, size, objects) in zip(files, parsed):
        boxes, labels = [], []
        for position, (name, box, difficult) in enumerate(objects):
            if skip_difficult and difficult:
                problems.note("difficult objects left out (skip_difficult=True)",
                              f"{file} object {position}")
                continue
            if name not in class_of:
                raise DataError(f"{file}: object {position} has unknown class {name!r}; "
                                f"expected one of {names}.")
            boxes.append(box)
            labels.append(class_of[name])
        path = find_image_path(image_folder, file_name, file, "<filename>", problems,
                               case_folding)
        if not os.path.isfile(path):
            path = _single_image_with_stem(path, file, problems)
        stem = os.path.splitext(os.path.basename(file))[0]
        images.append(AnnotatedImage(
            path=path, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            labels=np.asarray(labels, np.int32), size=size, source=file,
            split=split_of[stem] if split_of is not None else None))
    return build_detection_data(images, names, root, image_size, validation_split, batch_size,
                                augment, seed, max_boxes, cache,
                                max_image_pixels=max_image_pixels,
                                on_bad_annotation=on_bad_annotation,
                                trust_file_size=trust_file_size, problems=problems)


def _warn_names_differing_in_case(parsed, root: str) -> None:
    """One `DataWarning` for object names that differ only in case ('Cat' and 'cat',
    typed differently in LabelImg): each is a class of its own, with its counts."""
    counts: dict[str, int] = {}
    for _, _, objects in parsed:
        for name, _, _ in objects:
            counts[name] = counts.get(name, 0) + 1
    groups: dict[str, list[str]] = {}
    for name in sorted(counts):
        groups.setdefault(name.casefold(), []).append(name)
    alike = [group for group in groups.values() if len(group) > 1]
    if alike:
        shown = "; ".join(", ".join(f"{name!r} ({counts[name]} objects)" for name in group)
                          for group in alike[:3])
        warnings.warn(f"{root}: {len(alike)} group(s) of object names differ only in case "
                      f"({shown}); each name is a class of its own. If they are one class, "
                      "make the <name>s in the XML files agree.", DataWarning,
                      stacklevel=3)


def _annotation_files(folder: str, problems: Problems) -> list[str]:
    """The XML files directly in `folder` (extension in any case: `a.XML` too), sorted;
    hidden files (`._a.xml` from macOS) skipped as `image_folder` does, and other files
    counted in `problems`."""
    if not os.path.isdir(folder):
        return []
    files = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if entry.is_dir():
                problems.note("folders in the annotations folder left out (VOC keeps its "
                              "XML files directly in it)", repr(entry.name))
                continue
            if entry.name.lower().endswith(".xml"):
                files.append(entry.path)
            else:
                problems.note("files in the annotations folder that are not .xml left out",
                              repr(entry.name))
    return sorted(files)


def _image_sets(root: str, image_sets: str, annotations: str,
                stems: set[str]) -> dict[str, str] | None:
    """`{image id: split}` from `ImageSets/Main/{train,val,test}.txt`, or None without
    a train list."""
    folder = os.path.join(root, image_sets)
    if not os.path.isfile(os.path.join(folder, "train.txt")):
        return None
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        listing = os.path.join(folder, f"{split}.txt")
        if not os.path.isfile(listing):
            continue
        with open(listing, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                image_id = fields[0]
                if image_id in split_of and split_of[image_id] != split:
                    raise DataError(f"{listing} line {number}: image id {image_id!r} is also "
                                    f"in the {split_of[image_id]} list; expected each image "
                                    "in one split.")
                if image_id not in stems:
                    raise DataError(f"{listing} line {number}: no annotation "
                                    f"{image_id}.xml in {annotations!r}.")
                split_of[image_id] = split
    return split_of


def _single_image_with_stem(path: str, file: str, problems: Problems) -> str:
    """The one image on disk with the stem of a `<filename>` that is not on disk: written
    without its extension, or with another one (LabelImg keeps the name it annotated,
    e.g. `x.jpg`, after the images were converted to `x.png`). `path` itself when there
    is none (it is then counted as missing)."""
    stem, extension = os.path.splitext(path)
    if extension.lower() not in IMAGE_EXTENSIONS:
        stem, extension = path, ""
    found = sorted(p for p in glob.glob(glob.escape(stem) + ".*")
                   if p.lower().endswith(IMAGE_EXTENSIONS) and p != path)
    name = os.path.basename(path)
    if len(found) > 1:
        raise DataError(f"{file}: <filename> {name!r} is not in the images folder and "
                        f"several images have its stem: {found}; expected one.")
    if found:
        reason = ("<filename>s with another extension than the image on disk resolved by "
                  "stem" if extension else "<filename>s without extension resolved by stem")
        problems.note(reason, f"{file}: {name!r} -> {os.path.basename(found[0])!r}")
        return found[0]
    return path


def _number(element, tag: str, file: str) -> float:
    child = element.find(tag)
    if child is None or child.text is None:
        raise BadFileError(file, f"<{tag}> is missing or not a number", expected=_EXPECTED)
    try:
        return parse_number(child.text)
    except ValueError:
        raise BadFileError(file, f"<{tag}> is missing or not a number: {child.text!r} is "
                                 "not a finite number",
                           expected=_EXPECTED) from None


def _parse(file: str):
    """(file name, (height, width) or None, [(name, xyxy box, difficult)]) of one XML."""
    try:
        tree = ElementTree.parse(file)
    except ElementTree.ParseError as error:
        raise BadFileError(file, f"not valid XML ({error})", expected=_EXPECTED) from error
    top = tree.getroot()
    # Pretty-printing writers put the name between line breaks; no file name ends in them.
    file_name = (top.findtext("filename") or "").strip()
    if not file_name:
        raise BadFileError(file, "<filename> is missing", expected=_EXPECTED)
    size_element = top.find("size")
    size = None
    if size_element is not None and size_element.find("width") is not None:
        size = (_number(size_element, "height", file), _number(size_element, "width", file))
    objects = []
    for element in top.findall("object"):
        name = (element.findtext("name") or "").strip()
        box_element = element.find("bndbox")
        if not name or box_element is None:
            raise BadFileError(file, "an <object> lacks <name> or <bndbox>", expected=_EXPECTED)
        xmin, ymin, xmax, ymax = (_number(box_element, tag, file)
                                  for tag in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (element.findtext("difficult") or "0").strip() == "1"
        # 1-based inclusive pixel indices -> pixel-edge coordinates.
        objects.append((name, [xmin - 1, ymin - 1, xmax, ymax], difficult))
    return file_name, size, objects
