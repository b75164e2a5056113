"""`vk.data.check` / `visionkit data check`: the planted problems are all reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionkit as vk

HEIGHT, WIDTH = 16, 24


def _image(path: Path, identity: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[..., 0] = 4 * identity
    Image.fromarray(pixels).save(path)


def _yolo_with_duplicate_and_pixel_line(root: Path) -> None:
    for split, ids in (("train", [1, 2, 3]), ("val", [4, 5])):
        for identity in ids:
            _image(root / "images" / split / f"{identity}.png", identity)
            label = root / "labels" / split / f"{identity}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("0 0.5 0.5 0.5 0.25\n")
    # Planted: train/3.png copied into val; a label line in pixels.
    (root / "images/val/copy.png").write_bytes((root / "images/train/3.png").read_bytes())
    (root / "labels/train/2.txt").write_text("0 0.5 0.5 0.5 0.25\n0 12 8 6 4\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [thing]\n")


def _coco_with_swapped_size(root: Path) -> Path:
    _image(root / "a.png", 1)
    _image(root / "b.png", 2)
    spec = {"images": [{"id": 1, "file_name": "a.png", "width": WIDTH, "height": HEIGHT},
                       {"id": 2, "file_name": "b.png", "width": HEIGHT, "height": WIDTH}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]}
                            for i in (1, 2)],
            "categories": [{"id": 1, "name": "thing"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(spec))
    return path


def test_check_reports_duplicate_pixel_line_and_swapped_size(tmp_path):
    _yolo_with_duplicate_and_pixel_line(tmp_path / "yolo")
    report = vk.data.check(tmp_path / "yolo", image_size=(HEIGHT, WIDTH),
                           out=tmp_path / "summary.png")
    assert report["kind"] == "yolo"
    assert report["duplicates"] == [{"splits": ["train", "val"], "examples": 1}]
    assert any("2.txt line 2" in w and "outside 0..1" in w for w in report["warnings"])
    assert report["splits"]["train"] == {"images": 3, "objects": 3, "per_class": {"thing": 3}}
    assert report["splits"]["val"]["images"] == 3
    assert sum(report["box_sides"]["counts"]) == 5  # copy.png has no label file
    assert Image.open(report["figure"]).size[0] > 100

    coco = _coco_with_swapped_size(tmp_path / "coco")
    report = vk.data.check(coco, image_size=(HEIGHT, WIDTH))
    assert report["kind"] == "coco"
    assert any("'b.png' as width 16 x height 24 but the file is width 24 x height 16" in w
               for w in report["warnings"])
    assert sum(entry["images"] for entry in report["splits"].values()) == 1  # a.png only


def test_check_names_a_set_that_cannot_be_built(tmp_path):
    (tmp_path / "cats").mkdir()
    report = vk.data.check(tmp_path, kind="image_folder")
    assert report["errors"] and "Expected" in report["errors"][0]


@pytest.mark.slow
def test_cli_data_check_exits_1_and_prints_the_findings(tmp_path):
    _yolo_with_duplicate_and_pixel_line(tmp_path)
    result = subprocess.run([sys.executable, "-m", "visionkit.cli", "data", "check",
                             str(tmp_path), "--out", str(tmp_path / "s.png")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr
    assert "DUPLICATE: 1 image(s) in both train and val" in result.stdout
    assert "line 2" in result.stdout and (tmp_path / "s.png").is_file()


def test_check_reports_mask_class_pixel_shares(tmp_path):
    for split, names in (("train", ["a", "b"]), ("val", ["c"])):
        for name in names:
            for sub in ("images", "masks"):
                (tmp_path / sub / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
                tmp_path / "images" / split / f"{name}.png")
            mask = np.zeros((4, 4), np.uint8)
            mask[:1] = 1   # a quarter foreground
            mask[1:2, :2] = 255  # two void pixels, not counted
            Image.fromarray(mask).save(tmp_path / "masks" / split / f"{name}.png")
    report = vk.data.check(tmp_path, image_size=(4, 4))
    assert report["kind"] == "mask_folder" and report["class_names"] == ["0", "1"]
    assert report["splits"]["train"]["images"] == 2
    assert report["splits"]["val"]["per_class"] == {"0": 10 / 14, "1": 4 / 14}
