"""Masks as other tools save them: 16-bit greyscale PNGs (OpenCV / numpy uint16)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import visionkit as vk
from visionkit.errors import DataError


def _write_pairs(root, masks, mode):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for index, mask in enumerate(masks):
        pixels = np.random.default_rng(index).integers(0, 256, (*mask.shape, 3), np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{index}.png")
        Image.fromarray(mask.astype(np.uint16)).save(root / "masks" / f"{index}.png")
        assert Image.open(root / "masks" / f"{index}.png").mode == mode


def test_16bit_grey_png_masks_keep_their_class_ids(tmp_path):
    masks = []
    for index in range(3):
        mask = np.zeros((10, 14), np.uint16)
        mask[1:6, index:index + 7] = 1
        mask[7:, 9:] = 2
        mask[0, 0] = 255
        masks.append(mask)
    _write_pairs(tmp_path, masks, "I;16")
    data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=(10, 14),
                               validation_split=0, seed=None)
    assert data.class_names == ("0", "1", "2")
    got = [example["segmentation_masks"].numpy() for example in data.train_examples]
    # The reference is the array PIL reads from each file (pairs are in file order).
    for index, mask in enumerate(got):
        expected = np.asarray(Image.open(tmp_path / "masks" / f"{index}.png")).astype(np.int32)
        np.testing.assert_array_equal(mask, expected)


def test_16bit_masks_with_values_above_255_are_named(tmp_path):
    mask = np.zeros((6, 8), np.uint16)
    mask[2:4, 2:6] = 26001  # an instance id, as Cityscapes' *_instanceIds.png store them
    _write_pairs(tmp_path, [mask, mask], "I;16")
    with pytest.raises(DataError, match=r"(?s)1\.png.*I;16 mask holding values \[26001\]"):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=(6, 8))


def test_masks_with_a_suffix_are_named_with_the_suffix(tmp_path):
    # Carvana keeps "train/0cdf5b5d0ce1_01.jpg" with "train_masks/0cdf5b5d0ce1_01_mask.gif".
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images/car_01.jpg")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "masks/car_01_mask.gif")
    with pytest.raises(DataError, match=r"car_01\.jpg': no mask car_01\.png in masks_dir "
                                        r"\(masks_dir holds 'car_01_mask\.gif'.*'_mask' suffix"):
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=(4, 6))
