"""The user's own split is used exactly: class folders, evaluate(split="test"), CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataWarning

# Each image's red channel is its identity: id = red value // 2 (unique across splits).
SPLITS = {"train": 6, "val": 3, "test": 2}


def _write_split_tree(root: Path, fmt: str = "png") -> dict[str, set[int]]:
    """train/ val/ test/ with two classes; returns the image ids per split."""
    ids: dict[str, set[int]] = {}
    identity = 0
    for split, per_class in SPLITS.items():
        ids[split] = set()
        for name in ("cat", "dog"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for _ in range(per_class):
                pixels = np.zeros((12, 12, 3), np.uint8)
                pixels[..., 0] = 2 * identity
                pixels[..., 1] = 0 if name == "cat" else 200
                Image.fromarray(pixels).save(folder / f"{identity}.{fmt}",
                                             **({"lossless": True} if fmt == "webp" else {}))
                ids[split].add(identity)
                identity += 1
    return ids


def _ids(dataset) -> list[int]:
    found = []
    for images, _ in dataset:
        found += [int(round(v)) // 2 for v in images.numpy()[:, 0, 0, 0]]
    return found


def test_image_folder_uses_train_val_test_folders_exactly(tmp_path, capsys):
    ids = _write_split_tree(tmp_path)
    data = vk.data.image_folder(tmp_path, image_size=(12, 12), batch_size=4, seed=1)
    assert "random" not in capsys.readouterr().out  # no random split was made
    assert (data.train_size, data.val_size, data.test_size) == (12, 6, 4)
    for split in ("train", "val", "test"):
        seen = _ids(data.split(split))
        assert len(seen) == len(set(seen)) and set(seen) == ids[split], split


def test_image_folder_reads_webp_and_names_left_out_files(tmp_path):
    ids = _write_split_tree(tmp_path, fmt="webp")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "train/cat/scan.tif")
    (tmp_path / "train/dog/readme.txt").write_text("x")
    with pytest.warns(DataWarning, match=r"Left out 2 files.*1 \.tif.*scan\.tif.*1 \.txt"):
        data = vk.data.image_folder(tmp_path, image_size=(12, 12), batch_size=4)
    assert set(_ids(data.val)) == ids["val"]


def test_random_split_only_without_a_given_one_and_it_is_printed(tmp_path, capsys):
    _write_split_tree(tmp_path)
    data = vk.data.image_folder(tmp_path / "train", image_size=(12, 12),
                                validation_split=0.5)
    out = capsys.readouterr().out
    assert out.count("holding out a seeded random 50%") == 1
    assert (data.train_size, data.val_size, data.test_size) == (6, 6, 0)


def test_evaluate_test_split_differs_from_val(tmp_path):
    _write_split_tree(tmp_path)
    data = vk.data.image_folder(tmp_path, image_size=(12, 12), batch_size=4)
    model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    test = vk.train.evaluate(model, data, split="test")
    val = vk.train.evaluate(model, data)
    assert test["num_examples"] == 4 and val["num_examples"] == 6
    no_test = vk.data.image_folder(tmp_path / "train", image_size=(12, 12))
    with pytest.raises(ValueError, match="no test split"):
        vk.train.evaluate(model, no_test, split="test")
    with pytest.raises(ValueError, match="split name"):
        data.split("holdout")


@pytest.mark.slow
def test_cli_evaluate_split_test(tmp_path):
    _write_split_tree(tmp_path / "data")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: splits\ntask: classification\n"
        f"data: {{source: image_folder, path: '{tmp_path / 'data'}', image_size: [12, 12],"
        " batch_size: 4}\nmodel: {name: simple_cnn}\n")
    data = vk.data.image_folder(tmp_path / "data", image_size=(12, 12))
    model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    model.save(tmp_path / "model.keras")
    result = subprocess.run(
        [sys.executable, "-m", "visionkit.cli", "evaluate", str(tmp_path / "model.keras"),
         "--recipe", str(recipe), "--split", "test"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout[result.stdout.index("{"):])
    assert metrics["num_examples"] == 4
