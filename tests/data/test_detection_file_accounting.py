"""COCO and YOLO files pushed end to end through loading and augmentation: every box
left out, changed or dropped is counted and said once, and the counts equal a naive
count made here from the fixture itself.

The fixtures hold the ways users' files break loaders, as the peers' trackers report
them: iscrowd annotations (yolact / Yolact_minimal: every box crowd), boxes outside the
image and zero-area boxes (`bbox: [0, 0, 0, 0]`, PaddleCV-SIG/EISeg#85), annotations
without a category or bbox (labelme exports, maskrcnn-benchmark#480: segmentation only),
ids written as strings (VGG Image Annotator, dbolya/yolact#156), category ids that are
not contiguous (the COCO files themselves, 1..90 for 80 classes; voxel51/fiftyone#1696),
images without annotations, YOLO lines just past the border (ultralytics/yolov5#3509).
"""

from __future__ import annotations

import json
import warnings

import albumentations as A
import cv2
import numpy as np
import pytest

import visionkit as vk
from visionkit.data.boxes import MIN_BOX_SIDE
from visionkit.errors import DataError

SIZE = 32
SHIFT = 20  # pixels the augmentation moves every image (and box) to the right
CATEGORIES = [{"id": 12, "name": "fox"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
ANNOTATIONS = [
    {"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 10, 6, 8]},   # stays
    {"id": 2, "image_id": 10, "category_id": 7, "bbox": [20, 10, 8, 8]},  # shifted out
    {"id": 3, "image_id": 11, "category_id": 12, "bbox": [5, 5, 0, 4]},   # zero width
    {"id": 4, "image_id": 11, "category_id": 12, "bbox": [40, 5, 5, 5]},  # outside the image
    {"id": 5, "image_id": 11, "category_id": 3, "bbox": [28, 5, 10, 5]},  # clipped, shifted out
    {"id": 6, "image_id": 12, "category_id": 7, "bbox": [2, 2, 20, 20], "iscrowd": 1},
    {"id": 7, "image_id": 12, "category_id": 7, "bbox": [15, 2, 4, 4]},   # shifted out
    {"id": 8, "image_id": 12, "bbox": [2, 2, 4, 4]},                       # no category
    {"id": 9, "image_id": 12, "category_id": 99, "bbox": [2, 2, 4, 4]},   # unknown category
    {"id": 10, "image_id": "12", "category_id": 3, "bbox": [0, 20, 5, 5]},  # id as a string
    {"id": 11, "image_id": 13, "category_id": 3,                            # segmentation only
     "segmentation": [[2, 2, 8, 2, 8, 9, 2, 9]]},
    {"id": 12, "image_id": 13, "category_id": 7, "bbox": [0, 0, 0, 0]},   # zero area
]
IMAGE_IDS = (10, 11, 12, 13, 14)  # 14 has no annotation: background


def _shift_out():
    return A.Compose([A.Affine(translate_px={"x": SHIFT, "y": 0}, p=1.0)],
                     bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]))


def _write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8))


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    _write_images(root / "images", [f"{i}.png" for i in IMAGE_IDS])
    spec = {"images": [{"id": i, "file_name": f"{i}.png", "width": SIZE, "height": SIZE}
                       for i in IMAGE_IDS],
            "annotations": ANNOTATIONS, "categories": CATEGORIES}
    (root / "instances.json").write_text(json.dumps(spec))
    return root


def _naive_coco_count():
    """What a careful reader does with each annotation, one by one, and what the shift
    then does to the boxes kept: {reason: count} and the per-image kept boxes."""
    class_of = {c["id"]: index for index, c in
                enumerate(sorted(CATEGORIES, key=lambda c: c["id"]))}
    counts = {"crowd": 0, "category": 0, "degenerate": 0, "outside": 0, "clipped": 0,
              "string ids": 0, "from segmentation": 0, "augmented": 0, "shifted out": 0}
    kept = {i: [] for i in IMAGE_IDS}
    for annotation in ANNOTATIONS:
        if annotation.get("iscrowd"):
            counts["crowd"] += 1
            continue
        if annotation.get("category_id") not in class_of:
            counts["category"] += 1
            continue
        image_id = annotation["image_id"]
        if isinstance(image_id, str):
            counts["string ids"] += 1
            image_id = int(image_id)
        if "bbox" in annotation:
            x, y, w, h = annotation["bbox"]
        else:
            counts["from segmentation"] += 1
            xs = annotation["segmentation"][0][0::2]
            ys = annotation["segmentation"][0][1::2]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        if w <= 0 or h <= 0:
            counts["degenerate"] += 1
            continue
        x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, SIZE), min(y + h, SIZE)
        if x2 <= x1 or y2 <= y1:
            counts["outside"] += 1
            continue
        counts["clipped"] += [x1, y1, x2, y2] != [x, y, x + w, y + h]
        counts["augmented"] += 1
        if min(x2 + SHIFT, SIZE) - (x1 + SHIFT) < MIN_BOX_SIDE:
            counts["shifted out"] += 1
        kept[image_id].append(([x1, y1, x2, y2], class_of[annotation["category_id"]]))
    return counts, kept


def _said(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


def _one(messages, text):
    found = [m for m in messages if text in m]
    assert len(found) == 1, (text, messages)
    return found[0]


def test_coco_file_every_box_left_out_changed_or_dropped_is_counted_once(coco_file):
    expected, kept = _naive_coco_count()
    data, said = _said(lambda: vk.data.coco(
        coco_file / "instances.json", coco_file / "images", image_size=(SIZE, SIZE),
        validation_split=0, batch_size=2, augment=_shift_out(), on_bad_annotation="skip"))
    # Category ids 3, 7, 12 are classes 0, 1, 2 in ascending id order.
    assert data.class_names == ("cat", "dog", "fox")
    assert f"{expected['crowd']} iscrowd annotations left out" in _one(said, "iscrowd")
    assert f"{expected['category']} annotations with an unknown or no category_id left " \
           "out" in _one(said, "category_id left out")
    assert f"{expected['degenerate']} zero-area or inverted boxes" in _one(said, "zero-area")
    assert f"clipped {expected['clipped']} box(es) reaching beyond their image and dropped " \
           f"{expected['outside']} box(es) lying wholly outside" in _one(said, "clipped")
    assert f"{expected['string ids']} image_ids written as strings" in _one(said, "strings")
    assert f"{expected['from segmentation']} annotations without a bbox read as the " \
           "bounding box of their segmentation" in _one(said, "box of their segmentation")
    assert "annotation 10 '12'" in _one(said, "strings")  # the example names the entry
    # What was loaded: the naive reader's boxes, image by image.
    # (The records hold them as fractions of the image, before decoding.)
    loaded = []
    for record in data.train_records.as_numpy_iterator():
        labels = record["labels"]
        boxes = (record["boxes"][labels >= 0] * SIZE).round(3).tolist()
        loaded.append(sorted(zip(boxes, labels[labels >= 0].tolist())))
    assert sorted(loaded) == sorted(sorted(v) for v in kept.values())

    # One pass of the training pipeline: one warning, exact counts (each box that went
    # into augmentation counted once, though two stages look at it).
    _, said = _said(lambda: [None for _ in data.train])
    assert data.dropped_box_counts() == {"boxes": expected["augmented"],
                                         "dropped": expected["shifted out"]}
    message = _one(said, "Augmentation (albumentations Compose) dropped")
    assert "boxes of an image" in message and "The first of them before augmenting" in message
    assert not [m for m in said if "dropped" in m and m != message]


def test_coco_bad_annotations_without_skip_name_the_entry(coco_file, tmp_path):
    with pytest.raises(DataError, match=r"annotation 8: no category_id; the categories are "
                                        r"\[3, 7, 12\]\. Pass on_bad_annotation='skip'"):
        vk.data.coco(coco_file / "instances.json", coco_file / "images",
                     image_size=(SIZE, SIZE), validation_split=0)
    spec = json.loads((coco_file / "instances.json").read_text())
    spec["annotations"] = [{"id": 1, "image_id": "ten", "category_id": 3, "bbox": [1, 1, 4, 4]}]
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"annotation 1: unknown image_id 'ten'"):
        vk.data.coco(tmp_path / "bad.json", coco_file / "images", image_size=(SIZE, SIZE),
                     validation_split=0)


def test_coco_segmentation_only_annotations_read_rle_as_pycocotools_does(coco_file, tmp_path):
    from pycocotools import mask as coco_mask

    region = np.zeros((SIZE, SIZE), np.uint8, order="F")
    region[4:11, 6:19] = 1  # rows 4..10, columns 6..18: xywh [6, 4, 13, 7]
    rle = coco_mask.encode(region)
    rle["counts"] = rle["counts"].decode()
    spec = json.loads((coco_file / "instances.json").read_text())
    spec["annotations"] = [{"id": 1, "image_id": 10, "category_id": 7, "segmentation": rle,
                            "iscrowd": 0}]
    (tmp_path / "rle.json").write_text(json.dumps(spec))
    data, said = _said(lambda: vk.data.coco(
        tmp_path / "rle.json", coco_file / "images", image_size=(SIZE, SIZE),
        validation_split=0))
    boxes = [example["bounding_boxes"]["boxes"].numpy()[0].tolist()
             for example in data.train_examples
             if example["bounding_boxes"]["labels"].numpy()[0] >= 0]
    assert boxes == [[6.0, 4.0, 19.0, 11.0]]
    assert "annotation 1 -> [6.0, 4.0, 13.0, 7.0]" in _one(said, "box of their segmentation")


YOLO_LABELS = {
    "0": ["0 0.125 0.4375 0.1875 0.25",   # x 1..7: stays
          "1 0.75 0.4375 0.25 0.25"],     # x 20..28: shifted out
    "1": ["2 0.5 0.5 0 0.1",              # zero width
          "2 1.5 0.2 0.1 0.1",            # outside 0..1 (refused, counted)
          "0 0.95 0.2 0.11 0.1",          # reaches 1.005: clipped, then shifted out
          "7 0.5 0.5 0.1 0.1",            # unknown class id
          "0 0.1 0.1"],                   # malformed
    "2": ["1 0.1 0.1 0.3 0.1 0.3 0.3",    # a segment (polygon): x 3.2..9.6, stays
          "1 0.1 0.1 0.3 0.1 0.3 0.3",    # the same line again: one object labelled twice
          "1 0.1 0.1 0.3 0.3 0.3 0.1"],   # another polygon, the same bounding box: kept
    "3": [],                              # empty file: background
}


@pytest.fixture(scope="module")
def yolo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo")
    _write_images(root / "images", [f"{i}.png" for i in range(5)])  # 4.png: no label file
    (root / "labels").mkdir()
    for stem, lines in YOLO_LABELS.items():
        (root / "labels" / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


def _naive_yolo_count():
    counts = {"degenerate": 0, "outside range": 0, "unknown class": 0, "malformed": 0,
              "polygon": 0, "clipped": 0, "augmented": 0, "shifted out": 0, "duplicate": 0}
    for lines in YOLO_LABELS.values():
        for position, line in enumerate(lines):
            fields = line.split()
            if line in lines[:position]:
                counts["duplicate"] += 1
                continue
            if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
                counts["malformed"] += 1
                continue
            values = [float(v) for v in fields[1:]]
            if any(not -0.01 <= v <= 1.01 for v in values):
                counts["outside range"] += 1
                continue
            if not 0 <= int(fields[0]) < 3:
                counts["unknown class"] += 1
                continue
            if len(values) > 4:
                counts["polygon"] += 1
                xs, ys = values[0::2], values[1::2]
                x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
            else:
                cx, cy, w, h = values
                x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            if x2 <= x1 or y2 <= y1:
                counts["degenerate"] += 1
                continue
            inside = [max(x1, 0), max(y1, 0), min(x2, 1), min(y2, 1)]
            counts["clipped"] += inside != [x1, y1, x2, y2]
            counts["augmented"] += 1
            left = min(inside[2] * SIZE + SHIFT, SIZE) - (inside[0] * SIZE + SHIFT)
            counts["shifted out"] += left < MIN_BOX_SIDE
    return counts


def test_yolo_files_every_box_left_out_changed_or_dropped_is_counted_once(yolo_root):
    expected = _naive_yolo_count()
    data, said = _said(lambda: vk.data.yolo(
        yolo_root, image_size=(SIZE, SIZE), names=["cat", "dog", "fox"], validation_split=0,
        batch_size=2, augment=_shift_out(), on_bad_annotation="skip"))
    assert f"{expected['degenerate']} zero-area or inverted boxes" in _one(said, "zero-area")
    assert f"{expected['outside range']} label lines with normalised values outside 0..1 " \
           "left out" in _one(said, "outside 0..1")
    assert f"{expected['unknown class']} label lines with an unknown class id left out" in \
        _one(said, "unknown class id")
    assert f"{expected['malformed']} malformed label lines left out" in _one(said, "malformed")
    assert f"{expected['polygon']} segment (polygon) lines read as their bounding boxes" in \
        _one(said, "polygon")
    assert f"{expected['duplicate']} duplicate label lines" in _one(said, "duplicate")
    assert "2.txt line 2 = line 1" in _one(said, "duplicate")
    assert f"clipped {expected['clipped']} box(es)" in _one(said, "clipped")
    assert "4.png" in _one(said, "label file")  # the image without a label file, named
    assert data.train_size == 5  # the empty and the missing label file: background

    # Two passes, each through its own pipeline (a data check, then fit; or a
    # fine-tuning phase): one count for the data set, one warning. (Finite passes: an
    # endless train_from_epoch stream augments ahead of what is read.)
    _, said = _said(lambda: [[None for _ in data.train] for _ in range(2)])
    assert data.dropped_box_counts() == {"boxes": 2 * expected["augmented"],
                                         "dropped": 2 * expected["shifted out"]}
    assert len([m for m in said if "Augmentation (albumentations Compose) dropped" in m]) == 1
    assert data.with_augmentation(_shift_out()).dropped_box_counts() == {"boxes": 0,
                                                                         "dropped": 0}


@pytest.mark.parametrize("iscrowd, kept", [("0", 1), ("1", 0), (True, 0), (None, 1)])
def test_coco_iscrowd_as_exporters_write_it(coco_file, tmp_path, iscrowd, kept):
    # Spreadsheet and VIA exports write "0" / "1"; a truthy "0" is not a crowd.
    spec = json.loads((coco_file / "instances.json").read_text())
    spec["annotations"] = [{"id": 1, "image_id": 10, "category_id": 7, "bbox": [1, 1, 5, 5],
                            "iscrowd": iscrowd}]
    (tmp_path / "crowd.json").write_text(json.dumps(spec))
    data = vk.data.coco(tmp_path / "crowd.json", coco_file / "images",
                        image_size=(SIZE, SIZE), validation_split=0)
    labels = np.concatenate([r["labels"] for r in data.train_records.as_numpy_iterator()])
    assert int((labels >= 0).sum()) == kept
    spec["annotations"][0]["iscrowd"] = 2
    (tmp_path / "crowd.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"annotation 1: expected iscrowd 0 or 1; received 2"):
        vk.data.coco(tmp_path / "crowd.json", coco_file / "images", image_size=(SIZE, SIZE),
                     validation_split=0)
