"""COCO and YOLO files as other tools write them, read as those tools mean them.

Each case is a tiny file built by hand; the expected boxes are computed by hand.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError

HEIGHT, WIDTH = 40, 60


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(root / name)
    return root


def _coco(root, images_list, annotations, tmp_path, **kwargs):
    spec = {"images": images_list, "annotations": annotations,
            "categories": [{"id": 1, "name": "cat"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(spec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.coco(path, root, image_size=(HEIGHT, WIDTH), validation_split=0,
                            **kwargs)
        examples = []
        for example in data.train_examples:  # padding rows (label -1) left out
            labels = example["bounding_boxes"]["labels"].numpy()
            boxes = example["bounding_boxes"]["boxes"].numpy()[labels >= 0]
            examples.append((sorted(map(tuple, boxes.tolist())), labels[labels >= 0].tolist()))
    return examples, [str(w.message) for w in caught]


def _image(id_, name="a.png", **extra):
    return {"id": id_, "file_name": name, "width": WIDTH, "height": HEIGHT, **extra}


def _box(id_, image_id, bbox):
    return {"id": id_, "image_id": image_id, "category_id": 1, "bbox": bbox}


def test_coco_one_file_under_two_image_ids_is_one_image_with_both_ids_objects(images,
                                                                              tmp_path):
    # Merged exports list one picture twice; two copies would each teach the other's
    # object as background.
    examples, said = _coco(images, [_image(1), _image(2), _image(3, "b.png")],
                           [_box(1, 1, [0, 0, 10, 10]), _box(2, 2, [20, 10, 30, 20]),
                            _box(3, 3, [1, 1, 5, 5])], tmp_path)
    assert len(examples) == 2
    boxes = sorted(boxes for boxes, _ in examples)
    assert [(0.0, 0.0, 10.0, 10.0), (20.0, 10.0, 50.0, 30.0)] in boxes
    assert [(1.0, 1.0, 6.0, 6.0)] in boxes
    assert any("1 images listed twice under different ids" in s and "ids 1 and 2" in s
               for s in said)


def test_coco_one_file_under_two_ids_with_different_sizes_is_an_error(images, tmp_path):
    other = dict(_image(2), width=WIDTH * 2)
    with pytest.raises(DataError, match=r"'a.png' \(id 2\) is listed again with size"):
        _coco(images, [_image(1), other], [_box(1, 1, [0, 0, 10, 10])], tmp_path)


def test_coco_ids_written_as_whole_floats_are_read_as_integers(images, tmp_path):
    # pandas' to_json writes an integer column with a gap as floats: "id": 1.0.
    spec_images = [{**_image(1.0)}, _image(2, "b.png")]
    annotations = [{"id": 1, "image_id": 1.0, "category_id": 1.0, "bbox": [0, 0, 10, 10]},
                   {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10]}]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": spec_images, "annotations": annotations,
                                "categories": [{"id": 1.0, "name": "cat"}]}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.coco(path, images, image_size=(HEIGHT, WIDTH), validation_split=0)
    said = " ".join(str(w.message) for w in caught)
    assert data.class_names == ("cat",)
    boxes = sorted(tuple(e["bounding_boxes"]["boxes"].numpy()[0].tolist())
                   for e in data.train_examples)
    assert boxes == [(0.0, 0.0, 10.0, 10.0), (5.0, 5.0, 15.0, 15.0)]
    for text in ("1 image ids written as floats", "1 category ids written as floats",
                 "1 image_ids written as floats", "1 category_ids written as floats"):
        assert text in said


def test_coco_ids_that_are_not_whole_numbers_are_refused_naming_them(images, tmp_path):
    with pytest.raises(Exception, match=r"images\[0\] = \{'id': 1.5"):
        _coco(images, [_image(1.5)], [], tmp_path)
    with pytest.raises(DataError, match=r"unknown image_id 1.5"):
        _coco(images, [_image(1)], [_box(1, 1.5, [0, 0, 5, 5])], tmp_path)


def _yolo_root(tmp_path, label):
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "labels" / "a.txt").write_bytes(label)
    return tmp_path


def test_yolo_predictions_saved_with_their_confidence_are_refused_saying_so(tmp_path):
    root = _yolo_root(tmp_path, b"0 0.5 0.5 0.5 0.5 0.87\r\n")
    with pytest.raises(DataError, match=r"a.txt line 1: .*'0 0.5 0.5 0.5 0.5 0.87'.*"
                                        r"prediction saved with its confidence"):
        vk.data.yolo(root, image_size=(HEIGHT, WIDTH), names=["cat"], validation_split=0)


def test_yolo_six_values_that_are_no_confidence_get_no_such_hint(tmp_path):
    root = _yolo_root(tmp_path, b"0 0.5 0.5 0.5 0.5 3\n")
    with pytest.raises(DataError, match=r"a.txt line 1") as caught:
        vk.data.yolo(root, image_size=(HEIGHT, WIDTH), names=["cat"], validation_split=0)
    assert "confidence" not in str(caught.value)


def test_coco_annotation_without_bbox_and_an_unreadable_segmentation_names_both(images,
                                                                                  tmp_path):
    # A converter writing one polygon flat ([x1, y1, ...], not [[x1, y1, ...]]).
    flat = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [6, 4, 36, 4, 36, 24]}
    with pytest.raises(DataError, match=r"annotation 1: .*received no bbox, and its "
                                        r"segmentation \[6, 4, 36, 4, 36, 24\] is neither"):
        _coco(images, [_image(1)], [flat], tmp_path)


def test_coco_one_name_for_two_used_categories_is_refused_naming_them(images, tmp_path):
    # Two merged exports, each numbering "cat" its own way.
    spec = {"images": [_image(1)], "categories": [{"id": 1, "name": "cat"},
                                                  {"id": 2, "name": "cat"}],
            "annotations": [_box(1, 1, [0, 0, 10, 10]),
                            {**_box(2, 1, [20, 10, 10, 10]), "category_id": 2}]}
    path = tmp_path / "merged.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"class name 'cat' is given to categories \(class "
                                        r"ids\) \[0, 1\]"):
        vk.data.coco(path, images, image_size=(HEIGHT, WIDTH), validation_split=0)
    # Roboflow's unused category 0 may carry a class's name: said, not refused.
    spec["categories"][1]["id"] = 0
    spec["annotations"][1]["category_id"] = 1
    path.write_text(json.dumps(spec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.coco(path, images, image_size=(HEIGHT, WIDTH), validation_split=0)
    assert data.class_names == ("cat", "cat")
    assert any("1 class names given to more than one class id" in str(w.message)
               for w in caught)


def test_yolo_names_repeating_a_used_class_are_refused_naming_it(tmp_path):
    root = _yolo_root(tmp_path, b"0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.1 0.1\n")
    with pytest.raises(DataError, match=r"class name 'cat' is given to class ids \[0, 1\]"):
        vk.data.yolo(root, image_size=(HEIGHT, WIDTH), names=["cat", "cat"],
                     validation_split=0)


def test_coco_an_object_annotated_twice_in_one_image_is_one_box(images, tmp_path):
    # Two merged copies of one export: the same file under two ids, each annotated.
    examples, said = _coco(images, [_image(1), _image(2)],
                           [_box(1, 1, [0, 0, 10, 10]), _box(2, 2, [0, 0, 10, 10]),
                            _box(3, 2, [0, 0, 10, 12])], tmp_path)
    assert examples == [([(0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 12.0)], [0, 0])]
    assert any("1 annotations repeating the class and bbox" in s and "annotation 2 = "
               "annotation 1" in s for s in said)


def test_yolo_yaml_with_nc_and_no_names_names_classes_as_ultralytics_does(tmp_path):
    root = _yolo_root(tmp_path, b"1 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("train: images\nnc: 3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.yolo(root, image_size=(HEIGHT, WIDTH))
    assert data.class_names == ("class_0", "class_1", "class_2")
    assert any("classes named class_0..class_{nc-1}" in str(w.message) and "nc: 3" in
               str(w.message) for w in caught)
    # A names file next to the YAML still names them.
    (root / "classes.txt").write_text("cat\ndog\nbird\n")
    assert vk.data.yolo(root, image_size=(HEIGHT, WIDTH)).class_names == ("cat", "dog", "bird")
