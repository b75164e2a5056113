"""`coco`: a detection data set from a COCO instances JSON file and an images folder."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from visionkit.data.annotations import AnnotatedImage, build_detection_data, resolve_inside
from visionkit.data.boxes import xywh_to_xyxy
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError

__all__ = ["coco"]


def coco(annotations_json: str | os.PathLike, images_dir: str | os.PathLike,
         image_size: tuple[int, int] = (320, 320), validation_split: float = 0.2,
         batch_size: int = 16, augment: object = "none", seed: int | None = 0,
         max_boxes: int | None = None, cache: bool | str = False,
         skip_crowd: bool = True) -> Data:
    """A detection data set from COCO-format annotations.

    Reads `images` (`id`, `file_name`, `width`, `height`), `annotations` (`image_id`,
    `category_id`, `bbox` as `[x, y, width, height]` pixels, optional `iscrowd`) and
    `categories` (`id`, `name`). Category ids map to class ids 0..K-1 in ascending id
    order; `class_names` follow that order. Boxes become xyxy pixels of the resized image.

    Args:
        annotations_json: the COCO JSON file.
        images_dir: the folder `file_name`s are relative to (paths leaving it are
            refused).
        image_size: `(height, width)` images are resized to. Defaults to (320, 320).
        validation_split: held-out fraction. Defaults to 0.2.
        batch_size: examples per batch. Defaults to 16.
        augment: augmentation of the train split. Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        max_boxes: box rows per image. Defaults to the most of any image.
        cache: as for `Data`. Defaults to False.
        skip_crowd: leave out `iscrowd` annotations. Defaults to True.

    Returns:
        A detection `Data` set.

    Raises:
        BadFileError: if the file is not valid JSON or lacks the COCO keys.
        DataError: for an unknown category or image id, a degenerate box, a path outside
            `images_dir`, or no image on disk.

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
    path = os.fspath(annotations_json)
    spec = _read_json(path)
    categories = sorted(spec["categories"], key=lambda c: c["id"])
    class_of = {int(c["id"]): index for index, c in enumerate(categories)}
    names = [str(c.get("name", c["id"])) for c in categories]
    entries: dict[int, dict[str, Any]] = {}
    for image in spec["images"]:
        try:
            image_id = int(image["id"])
            file_name = str(image["file_name"])
        except (KeyError, TypeError, ValueError) as error:
            raise BadFileError(path, f"image entry {image!r} lacks an id or file_name",
                               expected="a COCO instances JSON file") from error
        size = (float(image["height"]), float(image["width"])) \
            if "height" in image and "width" in image else None
        entries[image_id] = {"path": resolve_inside(os.fspath(images_dir), file_name),
                             "size": size, "boxes": [], "labels": [], "file": file_name}
    for annotation in spec["annotations"]:
        where = f"{path} annotation {annotation.get('id', '?')}"
        if skip_crowd and annotation.get("iscrowd", 0):
            continue
        category = annotation.get("category_id")
        if category not in class_of:
            raise DataError(f"{where}: unknown category_id {category!r}; the categories are "
                            f"{sorted(class_of)}.")
        image_id = annotation.get("image_id")
        if image_id not in entries:
            raise DataError(f"{where}: unknown image_id {image_id!r}.")
        bbox = annotation.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise DataError(f"{where}: expected bbox as [x, y, width, height]; received "
                            f"{bbox!r}.")
        entries[image_id]["boxes"].append(xywh_to_xyxy(np.asarray(bbox, np.float32))[0])
        entries[image_id]["labels"].append(class_of[category])
    images = [AnnotatedImage(path=e["path"], boxes=np.asarray(e["boxes"], np.float32),
                             labels=np.asarray(e["labels"], np.int32), size=e["size"],
                             source=f"{path} image {e['file']!r}") for e in entries.values()]
    return build_detection_data(images, names, path, image_size, validation_split,
                                batch_size, augment, seed, max_boxes, cache)


def _read_json(path: str) -> dict[str, Any]:
    expected = "a COCO instances JSON file with 'images', 'annotations' and 'categories'"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such annotations file: {path!r}.")
    try:
        with open(path, encoding="utf-8") as handle:
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
