"""Names as detection data sets write them and disk holds them: YOLO names files that
disagree with data.yaml, and image file names that differ from the annotations' only by
letter case, a leading './' or a folder prefix (COCO, VOC, YOLO label pairing)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError, DataWarning

SIZE = (16, 24)  # (height, width) of every image: non-square


def _image(path: Path, identity: int) -> None:
    """A solid image whose red channel is `10 * identity` (its identity in the pipeline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((*SIZE, 3), np.uint8)
    pixels[..., 0] = 10 * identity
    Image.fromarray(pixels).save(path)


def _load(reader, *args, **kwargs):
    """The data set and the messages of the DataWarnings its reader gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = reader(*args, image_size=SIZE, validation_split=0, **kwargs)
    return data, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def _identities(data) -> list[int]:
    return sorted(int(round(float(e["images"].numpy()[0, 0, 0]) / 10))
                  for e in data.train_examples)


# -- YOLO names files ----------------------------------------------------------------
def _yolo_with_yaml(root: Path, yaml_names: str, class_id: int = 1) -> None:
    for split, identity in (("train", 1), ("train", 2), ("val", 3)):
        _image(root / "images" / split / f"{identity}.png", identity)
        label = root / "labels" / split / f"{identity}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"{class_id} 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(
        f"path: .\ntrain: images/train\nval: images/val\nnames: {yaml_names}\n")


def test_a_classes_txt_with_more_names_than_data_yaml_is_said_once_and_the_yaml_wins(
        tmp_path):
    _yolo_with_yaml(tmp_path, "[cat, dog]")
    (tmp_path / "labels" / "classes.txt").write_text("cat\ndog\nbird\n")
    data, said = _load(vk.data.yolo, tmp_path)
    assert data.class_names == ("cat", "dog")
    [message] = [m for m in said if "names files that disagree" in m]
    assert "labels/classes.txt" in message and "data.yaml" in message
    assert "3 names against 2" in message and "'bird'" in message
    assert "data set YAML's names, as ultralytics" in message


def test_a_names_file_with_other_names_names_the_differing_entries(tmp_path):
    _yolo_with_yaml(tmp_path, "[cat, dog]")
    (tmp_path / "classes.txt").write_text("dog\ncat\n")  # same count, swapped
    (tmp_path / "labels" / "train" / "classes.txt").write_text("cat\ndog\n")  # agrees
    data, said = _load(vk.data.yolo, tmp_path)
    assert data.class_names == ("cat", "dog")
    [message] = [m for m in said if "names files that disagree" in m]
    assert message.startswith(f"{tmp_path}: 1 names files")  # the agreeing one is not said
    assert "0: 'cat' vs 'dog'; 1: 'dog' vs 'cat'" in message


def test_a_class_id_only_the_longer_names_file_knows_is_refused_naming_both(tmp_path):
    _yolo_with_yaml(tmp_path, "[cat, dog]", class_id=2)
    (tmp_path / "labels" / "classes.txt").write_text("cat\ndog\nbird\n")
    with pytest.raises(DataError, match=r"1\.txt line 1: unknown class id 2; the names list "
                                        r"2 classes .*labels/classes\.txt' lists 3 classes.*"
                                        r"data\.yaml'"):
        vk.data.yolo(tmp_path, image_size=SIZE, validation_split=0)


def test_names_the_user_gives_are_not_compared_and_labelimgs_classes_txt_is_found(tmp_path):
    for identity in (1, 2):
        _image(tmp_path / "images" / f"{identity}.png", identity)
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"{identity}.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    # LabelImg saves classes.txt beside the labels, not in the root.
    (tmp_path / "labels" / "classes.txt").write_text("cat\ndog\n")
    data, said = _load(vk.data.yolo, tmp_path)
    assert data.class_names == ("cat", "dog") and not said
    data, said = _load(vk.data.yolo, tmp_path, names=["kitten", "puppy"])
    assert data.class_names == ("kitten", "puppy") and not said


# -- file names that differ from the disk only by letter case ----------------------------
def _coco(root: Path, file_names: list[str]) -> Path:
    spec = {"images": [{"id": index, "file_name": name, "width": SIZE[1], "height": SIZE[0]}
                       for index, name in enumerate(file_names, 1)],
            "annotations": [{"id": index, "image_id": index, "category_id": 1,
                             "bbox": [2, 2, 8, 6]} for index in range(1, len(file_names) + 1)],
            "categories": [{"id": 1, "name": "thing"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(spec))
    return path


def test_coco_file_names_in_another_case_prefixed_or_dotted_find_their_files(tmp_path):
    images = tmp_path / "images"
    _image(images / "img_001.jpg", 1)  # written on Windows as IMG_001.JPG
    _image(images / "2.png", 2)
    _image(images / "sub" / "3.png", 3)
    _image(images / "4.png", 4)
    path = _coco(tmp_path, ["IMG_001.JPG", "./2.png", "SUB/3.PNG", "images/4.png"])
    data, said = _load(vk.data.coco, path, images)
    assert _identities(data) == [1, 2, 3, 4]  # nothing left out as missing
    assert not [m for m in said if "missing on disk" in m]
    [message] = [m for m in said if "differs only in letter case" in m]
    assert ": 2 file_names matched" in message
    assert "images[0] (id 1): 'IMG_001.JPG' -> " in message
    assert "img_001.jpg" in message


def test_coco_exact_names_win_and_a_name_two_files_match_by_case_is_refused(tmp_path):
    images = tmp_path / "images"
    _image(images / "a.png", 1)
    _image(images / "A.png", 2)
    data, said = _load(vk.data.coco, _coco(tmp_path, ["A.png", "a.png"]), images)
    assert _identities(data) == [1, 2] and not [m for m in said if "letter case" in m]
    with pytest.raises(DataError, match=r"images\[0\] \(id 1\): file_name 'a\.PNG' "
                                        r"is not on disk as written, and 2 files differ"):
        vk.data.coco(_coco(tmp_path, ["a.PNG"]), images, image_size=SIZE, validation_split=0)


def _voc(root: Path, file_name: str) -> None:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "one.xml").write_text(
        f"<annotation><filename>{file_name}</filename><object><name>thing</name><bndbox>"
        "<xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "</annotation>")


def test_voc_filename_in_another_case_finds_its_file_and_two_matches_are_refused(tmp_path):
    _image(tmp_path / "JPEGImages" / "img_001.jpg", 1)
    _voc(tmp_path, "IMG_001.JPG")
    data, said = _load(vk.data.voc, tmp_path)
    assert _identities(data) == [1]
    [message] = [m for m in said if "letter case" in m]
    assert "one.xml: 'IMG_001.JPG' -> " in message and "<filename>s matched" in message
    _image(tmp_path / "JPEGImages" / "IMG_001.jpg", 2)
    with pytest.raises(DataError, match=r"one\.xml: <filename> 'IMG_001\.JPG' .* 2 files"):
        vk.data.voc(tmp_path, image_size=SIZE, validation_split=0)


def _yolo_flat(root: Path, images: dict[str, int], labels: dict[str, int]) -> None:
    for name, identity in images.items():
        _image(root / "images" / name, identity)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for name, class_id in labels.items():
        (root / "labels" / name).write_text(f"{class_id} 0.5 0.5 0.25 0.25\n")
    (root / "classes.txt").write_text("zero\none\n")


def _classes_by_identity(data) -> dict[int, list[int]]:
    found = {}
    for example in data.train_examples:
        labels = example["bounding_boxes"]["labels"].numpy()
        found[int(round(float(example["images"].numpy()[0, 0, 0]) / 10))] = \
            labels[labels >= 0].tolist()
    return found


def test_yolo_label_files_in_another_case_pair_with_their_images(tmp_path):
    _yolo_flat(tmp_path, {"IMG_001.JPG": 1, "b.jpg": 2, "c.png": 3},
               {"img_001.txt": 1, "b.TXT": 0, "c.txt": 1})
    data, said = _load(vk.data.yolo, tmp_path)
    assert _classes_by_identity(data) == {1: [1], 2: [0], 3: [1]}
    [message] = [m for m in said if "letter case" in m]
    assert ": 2 label files matched" in message and "'IMG_001.txt' -> " in message


def test_yolo_never_takes_another_images_label_by_case_and_refuses_a_shared_one(tmp_path):
    _yolo_flat(tmp_path, {"a.png": 1, "A.png": 2}, {"a.txt": 1})
    data, said = _load(vk.data.yolo, tmp_path)
    # A.png has no label file of its own: background, counted; a.txt stays a.png's.
    assert _classes_by_identity(data) == {1: [1], 2: []}
    assert [m for m in said if "without a label file" in m and "A.png" in m]
    shared = tmp_path / "shared"
    _yolo_flat(shared, {"P.png": 1, "p.PNG": 2}, {"P.TXT": 1})
    with pytest.raises(DataError, match=r"both pair with the label file .*P\.TXT"):
        vk.data.yolo(shared, image_size=SIZE, validation_split=0)


def test_yolo_split_lists_naming_images_in_another_case_find_them(tmp_path):
    _yolo_flat(tmp_path, {"img_1.png": 1, "img_2.png": 2}, {"img_1.txt": 0, "img_2.txt": 1})
    (tmp_path / "train.txt").write_text("images/IMG_1.PNG\n./images/img_2.png\n")
    (tmp_path / "data.yaml").write_text("train: train.txt\nnames: [zero, one]\n")
    data, said = _load(vk.data.yolo, tmp_path / "data.yaml")
    assert _classes_by_identity(data) == {1: [0], 2: [1]}
    [message] = [m for m in said if "letter case" in m]
    assert "train.txt line 1: 'IMG_1.PNG' -> " in message
