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
