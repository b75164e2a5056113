"""Bad input is refused before anything is written: no run directory, no cache files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionkit.config import parse_recipe
from visionkit.errors import DataError
from visionkit.run import run_recipe


def _yolo_with_pixel_labels(root) -> None:
    for split in ("train", "val"):
        for index in range(3):
            image = root / "images" / split / f"{index}.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
            label = root / "labels" / split / f"{index}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "labels/val/1.txt").write_text("0 8 8 4 4\n")  # pixels, not fractions
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [thing]\n")


@pytest.mark.parametrize("source", ["yolo", "mask_folder"])
def test_bad_data_leaves_no_run_directory_or_cache(tmp_path, source):
    if source == "yolo":
        _yolo_with_pixel_labels(tmp_path / "data")
        data = {"source": "yolo", "root": str(tmp_path / "data"),
                "cache": str(tmp_path / "cache" / "train")}
        task, model = "detection", "retinanet"
    else:
        for index in range(3):  # grey-level ids 0/85/170: a suspicious class count
            for sub, pixels in (("images", np.zeros((8, 8, 3), np.uint8)),
                                ("masks", np.full((8, 8), 85 * index, np.uint8))):
                (tmp_path / sub).mkdir(exist_ok=True)
                Image.fromarray(pixels).save(tmp_path / sub / f"{index}.png")
        data = {"source": "mask_folder", "images": str(tmp_path / "images"),
                "masks": str(tmp_path / "masks")}
        task, model = "segmentation", "unet"
    (tmp_path / "cache").mkdir()
    recipe = parse_recipe({"name": "bad", "task": task,
                           "data": {**data, "image_size": [16, 16]},
                           "model": {"name": model},
                           "train": {"epochs": 1, "run_dir": str(tmp_path / "runs" / "bad")}})
    with pytest.raises(DataError):
        run_recipe(recipe)
    assert not (tmp_path / "runs").exists()
    assert list((tmp_path / "cache").iterdir()) == []
