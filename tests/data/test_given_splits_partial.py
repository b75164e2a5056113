"""A given split with parts missing: train/ + test/ without val/, test/ alone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError


def _tree(root, splits):
    for split in splits:
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for index in range(2):
                Image.fromarray(np.full((6, 6, 3), 10 * index, np.uint8)).save(
                    root / split / name / f"{index}.png")


def test_train_and_test_without_val_is_used_as_given_and_said(tmp_path, capsys):
    _tree(tmp_path, ("train", "test"))
    data = vk.data.image_folder(tmp_path, image_size=(6, 6))
    out = capsys.readouterr().out
    assert out.count("has test, train but no validation part") == 1
    assert "random" not in out
    assert (data.train_size, data.val_size, data.test_size) == (4, 0, 4)


def test_split_folders_without_train_are_an_error_not_class_folders(tmp_path):
    _tree(tmp_path, ("val", "test"))
    with pytest.raises(DataError, match=r"only the split folder\(s\) \['test', 'val'\]; "
                                        r"expected a train/ folder"):
        vk.data.image_folder(tmp_path, image_size=(6, 6))
    shutil.rmtree(tmp_path / "val")
    with pytest.raises(DataError, match=r"only the split folder\(s\) \['test'\]"):
        vk.data.image_folder(tmp_path, image_size=(6, 6))
