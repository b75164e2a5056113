"""`vk.data.profile` and `visionkit data profile RECIPE`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.cli import main
from visionkit.data.profile import format_profile


def write_folder(root):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.jpg", quality=90)
    return root


def test_profile_times_every_stage_of_a_file_pipeline(tmp_path, capsys):
    root = write_folder(tmp_path / "images")
    data = vk.data.image_folder(root, image_size=(16, 16), batch_size=4, validation_split=0.0,
                                augment="geometric")
    result = vk.data.profile(data, batches=3)
    assert list(result["stages"]) == ["read", "decode", "resize", "augment"]
    assert all(rate > 0 for rate in result["stages"].values())
    assert result["pipeline"] == result["stages"]["augment"]
    assert result["batch_size"] == 4 and result["augment"] == "geometric"
    # The added costs telescope to the whole pipeline's time per image.
    total = sum(result["ms_per_image"].values())
    assert total == pytest.approx(1000.0 / min(result["stages"].values()), rel=1e-6)
    printed = capsys.readouterr().out
    assert printed.strip() == format_profile(result)
    for stage in ("read", "decode", "resize", "augment", "pipeline"):
        assert stage in printed


def test_profile_of_an_in_memory_source_has_no_file_stages():
    data = vk.data.digits(image_size=(8, 8), batch_size=16)
    result = vk.data.profile(data, batches=2, verbose=False)
    assert list(result["stages"]) == ["resize", "augment"]
    with pytest.raises(ValueError, match="batches >= 1"):
        vk.data.profile(data, batches=0)


def test_cli_data_profile_reads_a_recipe(tmp_path, capsys):
    root = write_folder(tmp_path / "images")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: folder\ntask: classification\n"
        f"data: {{source: image_folder, path: '{root}', image_size: [16, 16], batch_size: 4,"
        " augment: standard, validation_split: 0.0}\n"
        "model: {name: simple_cnn}\n")
    assert main(["data", "profile", str(recipe), "--batches", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["stages"]) == {"read", "decode", "resize", "augment"}
    assert result["augment"] == "standard"
    assert main(["data", "profile", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
