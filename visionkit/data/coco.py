"""`coco`: a detection data set from a COCO instances JSON file and an images folder."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from visionkit.data.annotation_checks import (
    Problems,
    check_on_bad_annotation,
    check_repeated_names,
    parse_number,
    raise_or_note,
)
from visionkit.data.annotations import (
    AnnotatedImage,
    build_detection_data,
    find_image_path,
)
from visionkit.data.boxes import xywh_to_xyxy
from visionkit.data.files import DEFAULT_MAX_IMAGE_PIXELS, CaseInsensitiveFiles
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError

__all__ = ["coco"]


def coco(annotations_json: str | os.PathLike, images_dir: str | os.PathLike,
         image_size: tuple[int, int] = (320, 320), validation_split: float = 0.2,
         batch_size: int = 16, augment: object = "none", seed: int | None = 0,
         max_boxes: int | None = None, cache: bool | str = False,
         skip_crowd: bool = True,
         max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
         val_annotations: str | os.PathLike | None = None,
         test_annotations: str | os.PathLike | None = None,
         val_images_dir: str | os.PathLike | None = None,
         test_images_dir: str | os.PathLike | None = None,
         on_bad_annotation: str = "error", trust_file_size: bool = False) -> Data:
    """A detection data set from COCO-format annotations, one JSON file per split.

    With `val_annotations` (and optionally `test_annotations`) the splits are the
    files, used exactly (their categories must agree); with only `annotations_json`, a
    seeded random `validation_split` is held out and that is printed. Each image's
    declared `width`/`height` is checked against its file's header: a mismatch (e.g.
    the two swapped) is an error naming the image and both sizes, unless
    `trust_file_size=True`; an image whose EXIF orientation turns it is read as
    displayed when its declared size is the displayed one.

    Reads `images` (`id`, `file_name`, `width`, `height`), `annotations` (`image_id`,
    `category_id`, `bbox` as `[x, y, width, height]` pixels, optional `iscrowd`) and
    `categories` (`id`, `name`). An annotation without a `bbox` (segmentation-only
    exports) gets the bounding box of its `segmentation` (polygons, or run-length
    encoding read by pycocotools), and ids written as digit strings (`"image_id": "7"`)
    are read as integers, as are whole floats (`"id": 1.0`); all counted in a warning.
    One file listed under two image ids is one image with the annotations of both, and an
    annotation repeating the class and bbox of an earlier one of its image is left out
    (both counted); one class name given to two categories that both have annotations
    is an error. Category ids map to class ids 0..K-1 in ascending id
    order; `class_names` follow that order (a category no annotation uses stays a class,
    counted in a warning). Boxes become xyxy pixels of the resized image.

    Args:
        annotations_json: the COCO JSON file.
        images_dir: the folder `file_name`s are relative to (paths leaving it are
            refused; a leading `./` is read as that folder). A `file_name` that repeats
            its last folders (`images/train/a.jpg` with `images_dir=".../images/train"`)
            is found without them, and one that differs from a file on disk only in
            letter case (`IMG_001.JPG` for `img_001.jpg`, from a Windows or macOS disk)
            is read as that file when it is the only one; both said in a warning with
            examples, the exact name always first. Several files matching but for case
            are an error naming the entry.
        image_size: `(height, width)` images are resized to. Defaults to (320, 320).
        validation_split: held-out fraction. Defaults to 0.2.
        batch_size: examples per batch. Defaults to 16.
        augment: augmentation of the train split. Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        max_boxes: box rows per image. Defaults to the most of any image.
        cache: as for `Data`. Defaults to False.
        skip_crowd: leave out `iscrowd` annotations (counted in a warning). Defaults
            to True.
        max_image_pixels: largest width x height accepted (checked from the header
            before decoding), or None for no limit. Defaults to 89,478,485.
        val_annotations, test_annotations: the JSON files of the validation and test
            splits. Defaults to None.
        val_images_dir, test_images_dir: their images folders. Default to `images_dir`.
        on_bad_annotation: "error" or "skip": a zero-area box (the official COCO train
            set has some), an annotation with an unknown or no `category_id`, an unknown
            `image_id`, no usable `bbox`, or an image whose declared size differs from
            its file raises naming it, or is left out and counted. Defaults to "error".
        trust_file_size: read boxes against the file's size when the declared size
            differs (counted in a warning). Defaults to False.

    Returns:
        A detection `Data` set.

    Raises:
        BadFileError: if the file is not valid JSON, lacks the COCO keys or has entries
            of the wrong type (naming the entry), or for images that do not decode.
        DataError: for an unknown category or image id, a bbox that is not 4 numbers,
            an `iscrowd` that is not 0 or 1, a degenerate box (these unless
            `on_bad_annotation="skip"`), a `file_name` that is absolute or climbs out of
            `images_dir` or matches several files but for letter case (naming the entry), or no image on disk. Images without annotations are kept (as background).

    Example:

    >>> import json, os, tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(os.path.join(root, "a.png"))
    >>> spec = {"images": [{"id": 1, "file_name": "a.png", "width": 60, "height": 40}],
    ...         "annotations": [{"id": 1, "image_id": 1, "category_id": 7,
    ...                          "bbox": [6, 4, 30, 20]}],
    ...         "categories": [{"id": 7, "name": "cat"}]}
    >>> with open(os.path.join(root, "a.json"), "w") as f: json.dump(spec, f)
    >>> data = coco(os.path.join(root, "a.json"), root, image_size=(20, 30),
    ...             validation_split=0)
    >>> example = next(iter(data.train_examples))
    >>> example["bounding_boxes"]["boxes"].numpy().tolist(), data.class_names
    ([[3.0, 2.0, 18.0, 12.0]], ('cat',))
    """
    check_on_bad_annotation(on_bad_annotation)
    path = os.fspath(annotations_json)
    problems = Problems(path)
    files = [(path, images_dir, "train" if val_annotations or test_annotations else None)]
    for extra, folder, split in ((val_annotations, val_images_dir, "val"),
                                 (test_annotations, test_images_dir, "test")):
        if extra is not None:
            files.append((os.fspath(extra), folder if folder is not None else images_dir,
                          split))
    images: list[AnnotatedImage] = []
    names = None
    for file, folder, split in files:
        file_names, file_images = _read_coco(file, os.fspath(folder), split, skip_crowd,
                                             on_bad_annotation, problems)
        if names is not None and file_names != names:
            raise DataError(f"Expected the same categories in every split's JSON; {path!r} "
                            f"has {names}, {file!r} has {file_names}.")
        names = file_names
        images += file_images
    _note_unused_categories(names, images, problems)
    check_repeated_names(names, np.concatenate(
        [np.asarray(image.labels).reshape(-1) for image in images] or [np.zeros(0)]),
        path, problems, what="categories (class ids)")
    return build_detection_data(images, names, path, image_size, validation_split,
                                batch_size, augment, seed, max_boxes, cache,
                                max_image_pixels=max_image_pixels,
                                on_bad_annotation=on_bad_annotation,
                                trust_file_size=trust_file_size, problems=problems)


def _read_coco(path: str, images_dir: str, split: str | None, skip_crowd: bool,
               on_bad_annotation: str, problems: Problems
               ) -> tuple[list[str], list[AnnotatedImage]]:
    """The class names and annotated images of one COCO JSON file."""
    spec = _read_json(path)
    categories = [_entry_id(category, "category", f"{path} categories[{position}]", problems)
                  if isinstance(category, dict) else category
                  for position, category in enumerate(spec["categories"])]
    class_of, names = _categories(categories, path)
    entries: dict[int, dict[str, Any]] = {}
    by_file: dict[str, dict[str, Any]] = {}
    files = CaseInsensitiveFiles()
    for position, image in enumerate(spec["images"]):
        where = f"{path} images[{position}]"
        if isinstance(image, dict):
            image = _entry_id(image, "image", where, problems)
        if not isinstance(image, dict) or not _is_int(image.get("id")) \
                or not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise BadFileError(path, f"images[{position}] = {_short(image)} lacks an integer "
                                     "'id' or a 'file_name' string", expected=_EXPECTED)
        file_name = image["file_name"]
        size = None
        if "height" in image or "width" in image:
            height, width = image.get("height"), image.get("width")
            try:
                size = (parse_number(height), parse_number(width))
            except (TypeError, ValueError):
                size = None
            if size is None or size[0] < 0 or size[1] < 0:
                raise BadFileError(path, f"images[{position}] ({file_name!r}) has height "
                                         f"{height!r} and width {width!r}; expected positive "
                                         "numbers", expected=_EXPECTED)
        if image["id"] in entries:
            raise DataError(f"{where}: image id {image['id']} appears twice.")
        file = find_image_path(images_dir, file_name, f"{where} (id {image['id']})",
                               "file_name", problems, files)
        first = by_file.get(file)
        if first is not None:
            # One picture under two ids (merged exports, an image added twice): the
            # annotations of both ids are its objects; two copies would each teach the
            # other's objects as background.
            if first["size"] is not None and size is not None and first["size"] != size:
                raise DataError(f"{where}: {file_name!r} (id {image['id']}) is listed again "
                                f"with size {size} (height, width); its entry id "
                                f"{first['id']} declares {first['size']}.")
            problems.note("images listed twice under different ids (one file) read as one "
                          "image with the annotations of both",
                          f"{file_name!r} ids {first['id']} and {image['id']}")
            entries[image["id"]] = first
            continue
        entries[image["id"]] = by_file[file] = {
            "path": file, "size": size, "boxes": [], "labels": [], "file": file_name,
            "id": image["id"]}
    for position, annotation in enumerate(spec["annotations"]):
        if not isinstance(annotation, dict):
            raise BadFileError(path, f"annotations[{position}] is {_short(annotation)}, not an "
                                     "object", expected=_EXPECTED)
        where = f"{path} annotation {_short(annotation.get('id', position))}"
        crowd = annotation.get("iscrowd", 0)
        if crowd not in (0, 1, None, "0", "1"):  # True == 1 and False == 0 pass too
            raise_or_note(on_bad_annotation, problems, "annotations with an iscrowd other "
                          "than 0 or 1", where, f"{where}: expected iscrowd 0 or 1; "
                          f"received {_short(crowd)}.")
            continue
        if skip_crowd and crowd in (1, "1"):
            problems.note("iscrowd annotations left out (skip_crowd=True)", where)
            continue
        category = _as_id(annotation.get("category_id"), class_of, "category_id", where,
                          problems)
        if not _is_int(category) or category not in class_of:
            said = "no category_id" if "category_id" not in annotation else \
                f"unknown category_id {_short(category)}"
            raise_or_note(on_bad_annotation, problems, "annotations with an unknown or no "
                          "category_id", where, f"{where}: {said}; the categories are "
                          f"{sorted(class_of)}.")
            continue
        image_id = _as_id(annotation.get("image_id"), entries, "image_id", where, problems)
        if not _is_int(image_id) or image_id not in entries:
            raise_or_note(on_bad_annotation, problems, "annotations with an unknown image_id",
                          where, f"{where}: unknown image_id {_short(image_id)}; no entry of "
                          "'images' has that id.")
            continue
        bbox = annotation.get("bbox")
        if bbox is None or bbox == []:  # a segmentation-only export (labelme2coco, ...)
            bbox = _segmentation_bbox(annotation.get("segmentation"))
            if bbox is not None:
                problems.note("annotations without a bbox read as the bounding box of their "
                              "segmentation", f"{where} -> {[round(v, 2) for v in bbox]}")
        # JSON numbers in any notation (1e2, 12.0) parse; strings are not numbers.
        values = [float(value) for value in bbox] if isinstance(bbox, (list, tuple)) \
            and len(bbox) == 4 and all(_is_number(value) for value in bbox) else None
        if values is None:
            said = f"received {_short(bbox)}" if bbox is not None else (
                "received no bbox, and its segmentation "
                f"{_short(annotation.get('segmentation'))} is neither a list of polygons "
                "([[x1, y1, x2, y2, ...], ...] pixels) nor run-length encoding ({size, "
                "counts}) with an area")
            raise_or_note(on_bad_annotation, problems, "annotations without a bbox of 4 "
                          "numbers", where, f"{where}: expected bbox as [x, y, width, "
                          f"height] numbers; {said}.")
            continue
        # The same class and box twice in one image is one object labelled twice
        # (merged exports, an image listed under two ids with its annotations copied):
        # left out and counted, as the YOLO reader does with repeated lines.
        key = (class_of[category], tuple(values))
        first = entries[image_id].setdefault("seen", {}).get(key)
        if first is not None:
            problems.note("annotations repeating the class and bbox of an earlier one of "
                          "their image left out", f"{where} = annotation {_short(first)}")
            continue
        entries[image_id]["seen"][key] = annotation.get("id", position)
        # Zero-area boxes are refused (or skipped) with the other degenerate boxes.
        entries[image_id]["boxes"].append(xywh_to_xyxy(np.asarray(values, np.float32))[0])
        entries[image_id]["labels"].append(class_of[category])
    # Images without annotations stay in the set: they teach the detector background.
    images = [AnnotatedImage(path=e["path"], boxes=np.asarray(e["boxes"], np.float32),
                             labels=np.asarray(e["labels"], np.int32), size=e["size"],
                             source=f"{path} image {e['file']!r}", split=split)
              for e in {id(e): e for e in entries.values()}.values()]
    return names, images


def _as_id(value: Any, known: dict, key: str, where: str, problems: Problems) -> Any:
    """`value`, or the integer a digit string or a whole float stands for when that is a
    known id (VGG Image Annotator and spreadsheet exports write `"image_id": "7"`,
    pandas' `to_json` writes `7.0` for a column that had a gap), counted."""
    number = _integral(value)
    if number is not None and not _is_int(value) and number in known:
        kind = "strings" if isinstance(value, str) else "floats"
        problems.note(f"{key}s written as {kind} read as integers", f"{where} {value!r}")
        return number
    return value


def _entry_id(entry: dict, key: str, where: str, problems: Problems) -> dict:
    """`entry` with its `id` an integer: a whole float (`1.0`) is read as one, counted;
    other ids are left for the caller to refuse."""
    value = entry.get("id")
    number = _integral(value)
    if number is None or _is_int(value) or isinstance(value, str):
        return entry
    problems.note(f"{key} ids written as floats read as integers", f"{where} {value!r}")
    return {**entry, "id": number}


def _integral(value: Any) -> int | None:
    """The integer `value` stands for (an int, a whole finite float, a digit string)."""
    if _is_int(value):
        return value
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _segmentation_bbox(segmentation: Any) -> list[float] | None:
    """`[x, y, width, height]` around a COCO segmentation: polygons (lists of x, y
    pairs in pixels) or run-length encoding (`{"size": [h, w], "counts": ...}`, read by
    pycocotools); None for anything else or an empty one."""
    if isinstance(segmentation, list) and segmentation and all(
            isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
            and all(_is_number(value) for value in polygon) for polygon in segmentation):
        points = np.concatenate([np.asarray(polygon, np.float64).reshape(-1, 2)
                                 for polygon in segmentation])
        low, high = points.min(axis=0), points.max(axis=0)
        return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]
    if isinstance(segmentation, dict) and isinstance(segmentation.get("size"), list) and \
            isinstance(segmentation.get("counts"), (str, list)):
        from pycocotools import mask as coco_mask

        try:
            height, width = (int(v) for v in segmentation["size"])
            rle = coco_mask.frPyObjects(segmentation, height, width) \
                if isinstance(segmentation["counts"], list) else segmentation
            box = [float(v) for v in coco_mask.toBbox(rle)]
        except (TypeError, ValueError, OverflowError):
            return None
        return box if box[2] > 0 and box[3] > 0 else None
    return None


def _note_unused_categories(names: list[str], images: list[AnnotatedImage],
                            problems: Problems) -> None:
    """Counts the categories no kept annotation uses: they stay classes (ids do not move)
    that the model can never learn, e.g. the data set's own name that Roboflow exports
    as category 0, the supercategory of the others."""
    used = set()
    for image in images:
        used.update(int(label) for label in np.asarray(image.labels).reshape(-1))
    for index, name in enumerate(names):
        if index not in used:
            problems.note("categories without any annotation kept as classes no example "
                          "shows (a Roboflow export's category 0 is the data set's name)",
                          f"class {index} {name!r}")


_EXPECTED = "a COCO instances JSON file with 'images', 'annotations' and 'categories'"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _short(value: Any, limit: int = 80) -> str:
    """`repr` of a value from the file, cut to `limit` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _categories(categories: list, path: str) -> tuple[dict[int, int], list[str]]:
    """`{category id: class id}` (ascending ids) and the class names."""
    for position, category in enumerate(categories):
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            raise BadFileError(path, f"categories[{position}] = {_short(category)} lacks an "
                                     "integer 'id'", expected=_EXPECTED)
    ordered = sorted(categories, key=lambda c: c["id"])
    ids = [c["id"] for c in ordered]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: category ids must be unique; received {ids}.")
    return ({category_id: index for index, category_id in enumerate(ids)},
            [str(c.get("name", c["id"])) for c in ordered])


def _read_json(path: str) -> dict[str, Any]:
    expected = _EXPECTED
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such annotations file: {path!r}.")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            spec = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadFileError(path, f"not valid JSON ({error})", expected=expected) from error
    if not isinstance(spec, dict):
        raise BadFileError(path, "the top level is not an object", expected=expected)
    for key in ("images", "annotations", "categories"):
        if not isinstance(spec.get(key), list):
            raise BadFileError(path, f"the key {key!r} is missing or not a list",
                               expected=expected)
    return spec
