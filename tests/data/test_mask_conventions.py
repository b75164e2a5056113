"""Mask conventions users keep: split folders, void ids, binary 0/255, value maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError, DataWarning

SIZE = (8, 10)


def _pair(root: Path, split: str | None, name: str, identity: int, mask: np.ndarray,
          mode: str | None = None) -> None:
    images = root / "images" / (split or "")
    masks = root / "masks" / (split or "")
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((*SIZE, 3), np.uint8)
    pixels[..., 0] = 4 * identity
    Image.fromarray(pixels).save(images / f"{name}.png")
    image = Image.fromarray(mask)
    if mode is not None:
        image = image.convert(mode)
    image.save(masks / f"{name}.png")


def _stripes(*values: int) -> np.ndarray:
    """A mask whose columns hold `values` in turn."""
    mask = np.zeros(SIZE, np.uint8)
    for column in range(SIZE[1]):
        mask[:, column] = values[column % len(values)]
    return mask


def _collect(dataset):
    ids, masks = [], []
    for images, batch_masks in dataset:
        ids += [int(round(v / 4)) for v in images.numpy()[:, 0, 0, 0]]
        masks.append(batch_masks.numpy())
    return ids, np.concatenate(masks) if masks else None


def test_split_folders_and_a_void_id_that_is_not_255(tmp_path, capsys):
    # Cityscapes-like: 0 is void, classes 1 and 2 are shifted to 0 and 1 by value_map.
    splits = {"train": [1, 2, 3, 4], "val": [5, 6], "test": [7]}
    for split, ids in splits.items():
        for identity in ids:
            _pair(tmp_path, split, f"p{identity}", identity, _stripes(0, 1, 2))
    data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                               batch_size=2, ignore_index=0, value_map={1: 0, 2: 1},
                               class_names=["road", "car"])
    assert "random" not in capsys.readouterr().out
    for split, ids in splits.items():
        seen, masks = _collect(data.split(split))
        assert sorted(seen) == ids, split
        np.testing.assert_array_equal(masks[0], _stripes(255, 0, 1))


def test_ignore_index_alone_marks_void(tmp_path):
    for identity in range(4):
        _pair(tmp_path, None, f"p{identity}", identity, _stripes(0, 1, 7))
    (tmp_path / "masks/p0.tif").write_bytes(b"II*\x00")  # a stray file is named
    with pytest.warns(DataWarning, match=r"Left out 1 file.*1 \.tif.*p0\.tif"):
        data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                                   ignore_index=7, validation_split=0)
    assert data.class_names == ("0", "1")
    _, masks = _collect(data.train)
    np.testing.assert_array_equal(masks[0], _stripes(0, 1, 255))


@pytest.mark.parametrize("mode", [None, "1"], ids=["0/255 grey", "1-bit PNG"])
def test_binary_masks_are_background_and_foreground(tmp_path, mode):
    for identity in range(4):
        _pair(tmp_path, None, f"p{identity}", identity, _stripes(0, 255, 255), mode=mode)
    with pytest.warns(DataWarning, match="only the values 0 and 255: read as binary"):
        data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                                   validation_split=0)
    assert data.num_classes == 2
    _, masks = _collect(data.train)
    np.testing.assert_array_equal(masks[0], _stripes(0, 1, 1))  # no pixel ignored


def test_grey_level_ids_are_an_error_and_value_map_reads_them(tmp_path):
    for identity in range(3):
        _pair(tmp_path, None, f"p{identity}", identity, _stripes(0, 85, 170))
    with pytest.raises(DataError, match=r"171 classes.*only 3 values occur: \[0, 85, 170\]"
                                        r".*p0\.png.*grey levels.*value_map"):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE)
    data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                               value_map={0: 0, 85: 1, 170: 2}, validation_split=0)
    assert data.num_classes == 3
    _, masks = _collect(data.train)
    np.testing.assert_array_equal(masks[0], _stripes(0, 1, 2))
    with pytest.raises(DataError, match=r"p0\.png.*values \[170\] are not in value_map"):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                            value_map={0: 0, 85: 1})


def test_many_speck_ids_are_an_error_naming_interpolated_masks(tmp_path):
    # Masks resized with interpolation: two real classes, edge pixels with blended ids.
    for identity in range(3):
        mask = np.zeros((80, 100), np.uint8)
        mask[:, 50:] = 12
        mask[0, 49] = 1 + identity
        for column, value in enumerate(range(3, 12)):
            mask[1 + identity, column] = value
        _pair_big = tmp_path
        images = _pair_big / "images"
        masks = _pair_big / "masks"
        images.mkdir(exist_ok=True)
        masks.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(images / f"p{identity}.png")
        Image.fromarray(mask).save(masks / f"p{identity}.png")
    with pytest.raises(DataError, match=r"less than 0\.1% of the pixels.*p0\.png.*"
                                        r"interpolation"):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE)


def test_values_outside_declared_classes_name_the_file_and_hint(tmp_path):
    for identity in range(3):
        _pair(tmp_path, None, f"p{identity}", identity, _stripes(0, 1, 4 if identity else 1))
    with pytest.raises(DataError, match=r"(?s)p1\.png.*class ids \[4\] >= 2 classes.*"
                                        r"ignore_index= or value_map="):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                            class_names=["a", "b"])


def test_recipe_accepts_ignore_index_and_value_map(tmp_path):
    from visionkit.config import parse_recipe
    from visionkit.run import data_from_recipe

    for identity in range(3):
        _pair(tmp_path, None, f"p{identity}", identity, _stripes(0, 100, 200))
    recipe = parse_recipe({
        "name": "masks", "task": "segmentation", "model": {"name": "unet"},
        "data": {"source": "mask_folder", "images": str(tmp_path / "images"),
                 "masks": str(tmp_path / "masks"), "image_size": list(SIZE),
                 "validation_split": 0, "ignore_index": 0, "value_map": {100: 0, 200: 1}}})
    data = data_from_recipe(recipe)
    _, masks = _collect(data.train)
    np.testing.assert_array_equal(masks[0], _stripes(255, 0, 1))


def test_palette_png_masks_read_their_indices_as_class_ids(tmp_path):
    # Pascal VOC's SegmentationClass: "P" mode PNGs, index = class id, 255 = void border.
    colours = [0] * 768
    colours[3:6] = [128, 0, 0]
    colours[6:9] = [0, 128, 0]
    colours[765:768] = [224, 224, 192]
    for identity in range(3):
        mask = Image.fromarray(_stripes(0, 1, 255, 2 if identity else 1), mode="P")
        mask.putpalette(colours)
        _pair(tmp_path, None, f"p{identity}", identity, np.zeros(SIZE, np.uint8))
        mask.save(tmp_path / "masks" / f"p{identity}.png")
    with pytest.warns(DataWarning, match=r"palette PNGs: their palette indices \[0, 1, 2, 255\]"):
        data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=SIZE,
                                   validation_split=0)
    assert data.num_classes == 3
    ids, masks = _collect(data.train)
    np.testing.assert_array_equal(masks[ids.index(1)], _stripes(0, 1, 255, 2))
