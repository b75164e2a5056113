"""Detection sets as annotation tools leave them: LabelImg names, overlapping YOLO splits."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError, DataWarning

HEIGHT, WIDTH = 20, 30


def _image(path: Path, identity: int, suffix_format: str | None = None) -> Path:
    """A solid image whose red channel is `4 * identity` (its identity in the pipeline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[..., 0] = 4 * identity
    Image.fromarray(pixels).save(path, format=suffix_format)
    return path


def _labelimg_xml(root: Path, stem: str, file_name: str) -> None:
    folder = root / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.xml").write_text(
        f"<annotation><folder>JPEGImages</folder><filename>{file_name}</filename>"
        f"<path>C:\\\\labels\\\\{file_name}</path><size><width>{WIDTH}</width>"
        f"<height>{HEIGHT}</height><depth>3</depth></size><object><name>cat</name>"
        "<truncated>0</truncated><difficult>0</difficult><bndbox><xmin>3</xmin>"
        "<ymin>4</ymin><xmax>12</xmax><ymax>10</ymax></bndbox></object></annotation>")


def test_voc_filename_with_another_extension_finds_the_converted_image(tmp_path):
    # LabelImg wrote <filename>a.jpg</filename>; the images were later saved as PNG.
    _image(tmp_path / "JPEGImages/a.png", 3)
    _labelimg_xml(tmp_path, "a", "a.jpg")
    with pytest.warns(DataWarning, match=r"another extension.*'a\.jpg' -> 'a\.png'"):
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    example = next(iter(data.train_examples))
    assert round(float(example["images"].numpy()[0, 0, 0]) / 4) == 3
    # VOC 1-based inclusive (3, 4, 12, 10) -> pixel edges (2, 3, 12, 10).
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[2, 3, 12, 10]])


def test_voc_filename_with_another_extension_and_two_candidates_is_an_error(tmp_path):
    _image(tmp_path / "JPEGImages/a.png", 1)
    _image(tmp_path / "JPEGImages/a.bmp", 2)
    _labelimg_xml(tmp_path, "a", "a.jpg")
    with pytest.raises(DataError, match=r"a\.xml: <filename> 'a\.jpg'.*several images"):
        vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)


def test_voc_upper_case_xml_is_read_and_other_files_are_said(tmp_path):
    # Windows tools write `B.XML`; a `notes.txt` or `a.xml.bak` beside them is not read.
    for stem, identity in (("a", 1), ("B", 2)):
        _image(tmp_path / f"JPEGImages/{stem}.png", identity)
        _labelimg_xml(tmp_path, stem, f"{stem}.png")
    (tmp_path / "Annotations/B.xml").rename(tmp_path / "Annotations/B.XML")
    (tmp_path / "Annotations/a.xml.bak").write_text("<annotation/>")
    (tmp_path / "Annotations/._a.xml").write_bytes(b"\x00\x05\x16\x07")  # macOS
    (tmp_path / "Annotations/old").mkdir()
    (tmp_path / "ImageSets/Main").mkdir(parents=True)
    (tmp_path / "ImageSets/Main/train.txt").write_text("a\nB\n")
    with pytest.warns(DataWarning, match=r"1 files in the annotations folder that are not "
                                         r"\.xml left out \(e\.g\. 'a\.xml\.bak'\)"):
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH))
    identities = sorted(round(float(e["images"].numpy()[0, 0, 0]) / 4)
                        for e in data.train_examples)
    assert identities == [1, 2]
    with pytest.warns(DataWarning, match=r"1 folders in the annotations folder left out.*'old'"):
        vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH))


def test_voc_filename_between_line_breaks_is_the_file(tmp_path):
    # An XML pretty-printer put the <filename> text on its own line.
    _image(tmp_path / "JPEGImages/a.png", 5)
    _labelimg_xml(tmp_path, "a", "\n    a.png\n  ")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    example = next(iter(data.train_examples))
    assert round(float(example["images"].numpy()[0, 0, 0]) / 4) == 5


def test_yolo_splits_sharing_files_are_said(tmp_path):
    # A data.yaml whose train list also names the val folder (ultralytics accepts lists).
    for split, identities in (("train", (1, 2)), ("val", (3,))):
        for identity in identities:
            _image(tmp_path / "images" / split / f"{identity}.png", identity)
            (tmp_path / "labels" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "labels" / split / f"{identity}.txt").write_text("0 .5 .5 .2 .2\n")
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: [images/train, images/val]\nval: images/val\nnames: [cat]\n")
    with pytest.warns(DataWarning, match=r"1 image file\(s\) are in more than one.*"
                                         r"3\.png' \(train and val\)"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH))
    assert (data.train_size, data.val_size) == (3, 1)
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [cat]\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH))


def test_coco_roboflow_category_zero_without_annotations_is_said(tmp_path):
    # Roboflow's COCO export: category 0 is the data set's name (supercategory "none"),
    # the real classes are 1..K with it as their supercategory; it has no annotation.
    import json

    _image(tmp_path / "a.png", 1)
    spec = {"images": [{"id": 0, "file_name": "a.png", "width": WIDTH, "height": HEIGHT}],
            "annotations": [{"id": 0, "image_id": 0, "category_id": 2, "bbox": [3, 4, 9, 6],
                             "area": 54, "iscrowd": 0, "segmentation": []}],
            "categories": [{"id": 0, "name": "pets", "supercategory": "none"},
                           {"id": 1, "name": "cat", "supercategory": "pets"},
                           {"id": 2, "name": "dog", "supercategory": "pets"}]}
    (tmp_path / "_annotations.coco.json").write_text(json.dumps(spec))
    with pytest.warns(DataWarning, match=r"2 categories without any annotation.*"
                                         r"class 0 'pets'; class 1 'cat'"):
        data = vk.data.coco(tmp_path / "_annotations.coco.json", tmp_path,
                            image_size=(HEIGHT, WIDTH), validation_split=0)
    assert data.class_names == ("pets", "cat", "dog")
    example = next(iter(data.train_examples))
    assert example["bounding_boxes"]["labels"].numpy().tolist() == [2]
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[3, 4, 12, 10]])


def test_text_files_with_a_utf8_byte_order_mark_read_as_without(tmp_path):
    # Windows Notepad and .NET writers start UTF-8 files with a byte order mark (BOM).
    import json

    bom = "\ufeff"
    _image(tmp_path / "yolo/images/a.png", 1)
    (tmp_path / "yolo/labels").mkdir(parents=True)
    (tmp_path / "yolo/labels/a.txt").write_text(bom + "1 0.5 0.5 0.2 0.4\n", "utf-8")
    (tmp_path / "yolo/classes.txt").write_text(bom + "cat\ndog\n", "utf-8")
    data = vk.data.yolo(tmp_path / "yolo", image_size=(HEIGHT, WIDTH), validation_split=0)
    assert data.class_names == ("cat", "dog")
    example = next(iter(data.train_examples))
    assert example["bounding_boxes"]["labels"].numpy().tolist() == [1]
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[12, 6, 18, 14]])

    _image(tmp_path / "coco/a.png", 2)
    spec = {"images": [{"id": 1, "file_name": "a.png", "width": WIDTH, "height": HEIGHT}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
            "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "coco/a.json").write_text(bom + json.dumps(spec), "utf-8")
    data = vk.data.coco(tmp_path / "coco/a.json", tmp_path / "coco",
                        image_size=(HEIGHT, WIDTH), validation_split=0)
    assert data.class_names == ("cat",) and data.train_size == 1

    for identity in (1, 2):
        _image(tmp_path / f"voc/JPEGImages/{identity}.png", identity)
        _labelimg_xml(tmp_path / "voc", str(identity), f"{identity}.png")
    sets = tmp_path / "voc/ImageSets/Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text(bom + "1\r\n", "utf-8")
    (sets / "val.txt").write_text(bom + "2\r\n", "utf-8")
    data = vk.data.voc(tmp_path / "voc", image_size=(HEIGHT, WIDTH))
    assert (data.train_size, data.val_size) == (1, 1)
    (train_image, _), = data.train.unbatch().take(1)
    assert round(float(train_image.numpy()[0, 0, 0]) / 4) == 1


def test_yolo_labels_not_where_ultralytics_looks_are_an_error_or_counted(tmp_path):
    for identity in (1, 2):
        _image(tmp_path / "images/train" / f"{identity}.jpg", identity, "PNG")
    (tmp_path / "Labels/train").mkdir(parents=True)  # not "labels": never found
    (tmp_path / "Labels/train/1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nnames: [cat]\n")
    with pytest.raises(DataError, match=r"none of the 2 images has a label file.*"
                                        r"labels/train/1\.txt"):
        vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    (tmp_path / "labels/train").mkdir(parents=True)
    (tmp_path / "labels/train/1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.warns(DataWarning, match=r"1 images without a label file read as background"
                                         r".*2\.jpg"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    boxes = sorted(int((e["bounding_boxes"]["labels"].numpy() >= 0).sum())
                   for e in data.train_examples)
    assert boxes == [0, 1]


def test_coco_file_names_repeating_images_dir_or_with_windows_separators(tmp_path):
    # labelme2coco writes "JPEGImages/a.png" while users point images_dir at JPEGImages;
    # a Windows exporter writes "sub\\b.png".
    import json

    folder = tmp_path / "data" / "JPEGImages"
    _image(folder / "a.png", 1)
    _image(folder / "sub" / "b.png", 2)
    spec = {"images": [{"id": 1, "file_name": "JPEGImages/a.png", "width": WIDTH,
                        "height": HEIGHT},
                       {"id": 2, "file_name": "sub\\b.png", "width": WIDTH, "height": HEIGHT}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 6, 7, 8]}],
            "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "c.json").write_text(json.dumps(spec))
    with pytest.warns(DataWarning) as caught:
        data = vk.data.coco(tmp_path / "c.json", folder, image_size=(HEIGHT, WIDTH),
                            validation_split=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 file_names repeating the end of images_dir" in messages
    assert "1 file_names with Windows" in messages and "missing on disk" not in messages
    found = {round(float(e["images"].numpy()[0, 0, 0]) / 4):
             e["bounding_boxes"]["boxes"].numpy().tolist() for e in data.train_examples}
    assert found == {1: [[1, 2, 4, 6]], 2: [[5, 6, 12, 14]]}
    # A path leaving the images folder is still refused.
    spec["images"][0]["file_name"] = "..\\..\\c.json"
    (tmp_path / "c.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match="points outside the images root"):
        vk.data.coco(tmp_path / "c.json", folder, image_size=(HEIGHT, WIDTH))


def test_yolo_label_files_named_otherwise_are_said_apart_from_missing_ones(tmp_path):
    # c.png.txt (a script appending .txt) is not read, as ultralytics does not read it;
    # b.TXT (a Windows tool) differs only in letter case, so it is b.png's label (said);
    # d.png has no label at all.
    for identity, stem in enumerate("abcd", start=1):
        _image(tmp_path / "images" / "train" / f"{stem}.png", identity)
    labels = tmp_path / "labels" / "train"
    labels.mkdir(parents=True)
    for name in ("a.txt", "b.TXT", "c.png.txt"):
        (labels / name).write_text("0 .5 .5 .2 .2\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nnames: [cat]\n")
    with pytest.warns(DataWarning) as said:
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH))
    messages = [str(w.message) for w in said]
    assert any(re.search(r"1 images read as background although a label file of another "
                         r"name is there.*'c\.png\.txt' is there", m)
               for m in messages), messages
    assert any(re.search(r"1 label files matched .*letter case.*'b\.txt' -> .*b\.TXT", m)
               for m in messages), messages
    assert any(re.search(r"1 images without a label file.*d\.png", m) for m in messages)
    objects = {round(float(e["images"].numpy()[0, 0, 0]) / 4):
               int((e["bounding_boxes"]["labels"].numpy() >= 0).sum())
               for e in data.train_examples}
    assert objects == {1: 1, 2: 1, 3: 0, 4: 0}


def test_voc_names_differing_only_in_case_are_said(tmp_path):
    for stem, name in (("a", "cat"), ("b", "Cat"), ("c", "cat")):
        _image(tmp_path / f"JPEGImages/{stem}.png", 1)
        _labelimg_xml(tmp_path, stem, f"{stem}.png")
        path = tmp_path / f"Annotations/{stem}.xml"
        path.write_text(path.read_text().replace("<name>cat</name>", f"<name>{name}</name>"))
    with pytest.warns(DataWarning, match=r"1 group\(s\) of object names differ only in case "
                                         r"\('Cat' \(1 objects\), 'cat' \(2 objects\)\)"):
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    assert data.class_names == ("Cat", "cat")


@pytest.mark.parametrize("file_name, said", [
    ("JPEGImages/a.png", r"repeating the end of images_dir"),
    ("sub\\a.png", r"Windows '\\' separators")])
def test_voc_filename_with_folders_is_found_as_coco_finds_it(tmp_path, file_name, said):
    image = "sub/a.png" if file_name.startswith("sub") else "a.png"
    _image(tmp_path / "JPEGImages" / image, 6)
    _labelimg_xml(tmp_path, "a", file_name)
    with pytest.warns(DataWarning, match=said):
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    example = next(iter(data.train_examples))
    assert round(float(example["images"].numpy()[0, 0, 0]) / 4) == 6
