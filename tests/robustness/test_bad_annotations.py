"""Annotation files that are invalid, empty, of the wrong types, or list no boxes.

Each bad file gets a visionkit error naming the file and the entry; an image whose
annotation lists no boxes stays in the data set as a background example.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import visionkit as vk
from visionkit.errors import BadFileError, DataError
from visionkit.testing import noise, save_image, write_bytes

IMAGE = {"id": 1, "file_name": "a.png", "width": 16, "height": 12}
ANNOTATION = {"id": 5, "image_id": 1, "category_id": 3, "bbox": [2, 2, 6, 5]}
CATEGORY = {"id": 3, "name": "cat"}


def _coco(tmp_path, spec) -> str:
    save_image(tmp_path / "images" / "a.png", noise(12, 16))
    save_image(tmp_path / "images" / "b.png", noise(12, 16, seed=1))
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return str(write_bytes(tmp_path / "instances.json", text))


def _spec(**changes):
    spec = {"images": [IMAGE], "annotations": [ANNOTATION], "categories": [CATEGORY]}
    spec.update(changes)
    return spec


COCO_CASES = {
    "not JSON": ("{'images': [", BadFileError, "not valid JSON"),
    "empty file": ("", BadFileError, "not valid JSON"),
    "a list at the top": ("[]", BadFileError, "top level is not an object"),
    "images not a list": (_spec(images={"id": 1}), BadFileError, "'images' is missing"),
    "image id a string": (_spec(images=[{**IMAGE, "id": "1"}]), BadFileError, "images[0]"),
    "image entry a number": (_spec(images=[7]), BadFileError, "images[0] = 7"),
    "width a string": (_spec(images=[{**IMAGE, "width": "wide"}]), BadFileError,
                       "width 'wide'"),
    "category without id": (_spec(categories=[{"name": "cat"}]), BadFileError,
                            "categories[0]"),
    "bbox of strings": (_spec(annotations=[{**ANNOTATION, "bbox": ["2", 2, 6, 5]}]),
                        DataError, "annotation 5: expected bbox"),
    "bbox of 3 numbers": (_spec(annotations=[{**ANNOTATION, "bbox": [2, 2, 6]}]),
                          DataError, "annotation 5: expected bbox"),
    "category_id a list": (_spec(annotations=[{**ANNOTATION, "category_id": [3]}]),
                           DataError, "unknown category_id [3]"),
    "annotation a string": (_spec(annotations=["box"]), BadFileError, "annotations[0]"),
    "negative width box": (_spec(annotations=[{**ANNOTATION, "bbox": [8, 2, -6, 5]}]),
                           DataError, "degenerate"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_bad_coco_file_is_named(tmp_path, case):
    spec, error_type, fragment = COCO_CASES[case]
    path = _coco(tmp_path, spec)
    with pytest.raises(error_type) as error:
        vk.data.coco(path, tmp_path / "images")
    assert path in str(error.value)
    assert fragment in str(error.value)


def _voc(tmp_path, xml: str, name: str = "a.xml") -> str:
    save_image(tmp_path / "JPEGImages" / "a.png", noise(12, 16))
    return str(write_bytes(tmp_path / "Annotations" / name, xml))


OBJECT = ("<object><name>cat</name><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>8</xmax>"
          "<ymax>7</ymax></bndbox></object>")
VOC_CASES = {
    "not XML": ("<annotation><filename>a.png", "not valid XML"),
    "empty file": ("", "not valid XML"),
    "no filename": (f"<annotation>{OBJECT}</annotation>", "<filename> is missing"),
    "coordinate a word": (
        "<annotation><filename>a.png</filename><object><name>cat</name><bndbox>"
        "<xmin>left</xmin><ymin>3</ymin><xmax>8</xmax><ymax>7</ymax></bndbox></object>"
        "</annotation>", "<xmin> is missing or not a number"),
    "coordinate nan": (
        "<annotation><filename>a.png</filename><object><name>cat</name><bndbox>"
        "<xmin>nan</xmin><ymin>3</ymin><xmax>8</xmax><ymax>7</ymax></bndbox></object>"
        "</annotation>", "not a finite number"),
    "object without box": ("<annotation><filename>a.png</filename><object><name>cat</name>"
                           "</object></annotation>", "lacks <name> or <bndbox>"),
    "entity expansion": ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx">'
                         + "".join(f'<!ENTITY x{i} "{"&x;" * 10 if i == 0 else f"&x{i - 1};" * 10}">'
                                   for i in range(8))
                         + "]><annotation><filename>&x7;</filename></annotation>",
                         "not valid XML"),
}


@pytest.mark.parametrize("case", list(VOC_CASES))
def test_bad_voc_file_is_named(tmp_path, case):
    xml, fragment = VOC_CASES[case]
    path = _voc(tmp_path, xml)
    with pytest.raises(BadFileError) as error:
        vk.data.voc(tmp_path)
    assert error.value.path == path
    assert fragment in str(error.value)


def _yolo(tmp_path, label: bytes | str | None) -> str:
    save_image(tmp_path / "images" / "a.png", noise(12, 16))
    save_image(tmp_path / "images" / "b.png", noise(12, 16, seed=1))
    write_bytes(tmp_path / "labels" / "b.txt", "0 0.5 0.5 0.25 0.25\n")
    return str(write_bytes(tmp_path / "labels" / "a.txt", label)) if label is not None else ""


YOLO_CASES = {
    "four numbers": ("0 0.5 0.5 0.2\n", DataError, "line 1: expected 'class_id"),
    "a word": ("0 0.5 0.5 0.2 wide\n", DataError, "line 1"),
    "class id a fraction": ("0.5 0.5 0.5 0.2 0.2\n", DataError, "line 1"),
    "unknown class": ("\n\n7 0.5 0.5 0.2 0.2\n", DataError, "line 3: unknown class id 7"),
    "infinite size": ("0 0.5 0.5 inf 0.2\n", DataError, "finite"),
    "not UTF-8": (b"0 0.5 0.5 0.2 0.2\n\xff\xfe\x00", BadFileError, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(YOLO_CASES))
def test_bad_yolo_label_file_is_named(tmp_path, case):
    label, error_type, fragment = YOLO_CASES[case]
    path = _yolo(tmp_path, label)
    with pytest.raises(error_type) as error:
        vk.data.yolo(tmp_path, names=["cat"])
    assert path in str(error.value)
    assert fragment in str(error.value)


def _background(data) -> list[np.ndarray]:
    """Label rows of the examples without any box."""
    rows = [example["bounding_boxes"]["labels"].numpy() for example in data.train_examples]
    return [row for row in rows if np.all(row == -1)]


def test_coco_image_without_annotations_is_kept_as_background(tmp_path):
    path = _coco(tmp_path, _spec(images=[IMAGE, {**IMAGE, "id": 2, "file_name": "b.png"}]))
    data = vk.data.coco(path, tmp_path / "images", image_size=(12, 16), validation_split=0)
    assert data.train_size == 2
    assert len(_background(data)) == 1


def test_coco_with_no_annotations_at_all_keeps_every_image(tmp_path):
    path = _coco(tmp_path, _spec(annotations=[]))
    data = vk.data.coco(path, tmp_path / "images", image_size=(12, 16), validation_split=0)
    assert data.train_size == 1 and len(_background(data)) == 1


def test_voc_annotation_without_objects_is_kept_as_background(tmp_path):
    _voc(tmp_path, f"<annotation><filename>a.png</filename>{OBJECT}</annotation>")
    save_image(tmp_path / "JPEGImages" / "b.png", noise(12, 16, seed=1))
    _voc(tmp_path, "<annotation><filename>b.png</filename></annotation>", name="b.xml")
    data = vk.data.voc(tmp_path, image_size=(12, 16), validation_split=0)
    assert data.train_size == 2 and len(_background(data)) == 1


@pytest.mark.parametrize("label", ["", None], ids=["empty label file", "no label file"])
def test_yolo_image_with_no_boxes_is_kept_as_background(tmp_path, label):
    _yolo(tmp_path, label)
    data = vk.data.yolo(tmp_path, names=["cat"], image_size=(12, 16), validation_split=0)
    assert data.train_size == 2 and len(_background(data)) == 1
