"""Segmentation data: shapes masks, masks from arrays, mask folders, augmentation, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.data.synthetic import generate_shapes
from visionkit.errors import DataError
from visionkit.testing import save_image


def all_batches(dataset):
    images, masks = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(masks)


def test_shapes_segmentation_masks_are_the_generators_exact_class_maps():
    data = vk.data.shapes("segmentation", n=30, image_size=(32, 48), seed=5,
                          validation_split=0.0, batch_size=64)
    assert data.class_names == ("background", "circle", "square", "triangle", "star", "cross")
    # validation_split=0: everything is in the train split; read its examples in order.
    images, masks = all_batches(data.train_examples.batch(64).map(
        lambda e: (e["images"], e["segmentation_masks"])))
    scenes = generate_shapes(30, image_size=(32, 48), seed=5, shapes_per_image=(1, 3))
    np.testing.assert_array_equal(images, scenes.images.astype(np.float32))
    # Pixel by pixel: 0 where no shape, else 1 + the class of the visible instance.
    expected = np.zeros((30, 32, 48), np.int32)
    for index in range(30):
        for instance in scenes.instances_of(index):
            expected[index][scenes.instance_ids[index] == instance] = (
                scenes.instance_classes[instance] + 1)
    np.testing.assert_array_equal(masks, expected)
    assert masks.dtype == np.int32


def test_from_arrays_masks_resize_with_nearest_neighbour_only():
    masks = np.zeros((4, 8, 8), np.int32)
    masks[:, :4, :4] = 1
    masks[:, 4:, 4:] = 2
    masks[:, 0, 7] = 255
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    data = vk.data.from_arrays(images, masks=masks, image_size=(16, 12), validation_split=0.5,
                               class_names=["bg", "a", "b"], batch_size=8)
    assert data.task.name == "segmentation"
    _, resized = all_batches(data.val)
    assert resized.shape == (2, 16, 12)
    assert set(np.unique(resized)) == {0, 1, 2, 255}   # no interpolated in-between ids
    # Nearest neighbour with half-pixel centres: output row r reads input row floor((r+0.5)/2).
    rows = np.floor((np.arange(16) + 0.5) * 8 / 16).astype(int)
    cols = np.floor((np.arange(12) + 0.5) * 8 / 12).astype(int)
    np.testing.assert_array_equal(resized[0], masks[0][rows][:, cols])


def test_from_arrays_refuses_bad_class_ids_naming_values_and_indices():
    masks = np.zeros((5, 8, 8), np.int32)
    masks[3, 2, 2] = 7
    masks[4, 0, 0] = 9
    with pytest.raises(DataError, match=r"class ids \[7, 9\].*indices \[3, 4\]"):
        vk.data.from_arrays(np.zeros((5, 8, 8, 3)), masks=masks, class_names=["a", "b", "c"])


def test_from_arrays_refuses_masks_of_another_size():
    with pytest.raises(DataError, match=r"images' size \(8, 8\).*\(8, 6\)"):
        vk.data.from_arrays(np.zeros((5, 8, 8, 3)), masks=np.zeros((5, 8, 6), np.int32))


def make_mask_folder(root, count=6, size=(12, 16), palette=None):
    rng = np.random.default_rng(0)
    for index in range(count):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        mask = np.zeros(size, np.uint8)
        mask[: size[0] // 2] = 1
        mask[-1, -1] = 255
        save_image(root / "images" / f"scan_{index:02d}.jpg", image)
        if palette is None:
            save_image(root / "masks" / f"scan_{index:02d}.png", mask)
        else:
            colours = np.zeros((*size, 3), np.uint8)
            for colour, class_id in palette.items():
                colours[mask == class_id] = colour
            save_image(root / "masks" / f"scan_{index:02d}.png", colours)
    return root / "images", root / "masks"


def test_mask_folder_pairs_by_stem_and_resizes_masks_nearest(tmp_path):
    images_dir, masks_dir = make_mask_folder(tmp_path)
    data = vk.data.mask_folder(images_dir, masks_dir, image_size=(24, 32),
                               class_names=["background", "top"], validation_split=0.5,
                               batch_size=8)
    assert (data.train_size, data.val_size) == (3, 3)
    images, masks = all_batches(data.val)
    assert images.shape == (3, 24, 32, 3) and masks.shape == (3, 24, 32)
    expected = np.zeros((24, 32), np.int32)
    expected[:12] = 1
    expected[-2:, -2:] = 255
    np.testing.assert_array_equal(masks[0], expected)
    train_images, train_masks = all_batches(data.train)
    assert train_masks.shape == (3, 24, 32)


def test_mask_folder_with_a_colour_palette(tmp_path):
    palette = {(0, 0, 0): 0, (200, 30, 30): 1, (255, 255, 255): 255}
    images_dir, masks_dir = make_mask_folder(tmp_path, palette=palette)
    data = vk.data.mask_folder(images_dir, masks_dir, image_size=(12, 16), palette=palette,
                               validation_split=0.5)
    assert data.class_names == ("0", "1")
    _, masks = all_batches(data.val)
    assert masks[0, 0, 0] == 1 and masks[0, -2, 0] == 0 and masks[0, -1, -1] == 255


def test_mask_folder_names_the_image_without_a_mask(tmp_path):
    images_dir, masks_dir = make_mask_folder(tmp_path)
    (masks_dir / "scan_03.png").unlink()
    with pytest.raises(DataError, match=r"(?s)1 image\(s\) have none.*scan_03\.jpg"):
        vk.data.mask_folder(images_dir, masks_dir)


def test_mask_folder_counts_the_masks_without_an_image(tmp_path):
    # scan_03.jpg was renamed (or deleted) after its mask was drawn: the mask is unused.
    images_dir, masks_dir = make_mask_folder(tmp_path)
    (images_dir / "scan_03.jpg").rename(images_dir / "scan-03.jpg")
    (masks_dir / "scan-03.png").write_bytes((masks_dir / "scan_03.png").read_bytes())
    with pytest.warns(vk.errors.DataWarning, match=r"Left out 1 mask\(s\) with no image of "
                                                   r"their stem.*scan_03\.png"):
        data = vk.data.mask_folder(images_dir, masks_dir, image_size=(12, 16),
                                   class_names=["background", "top"], validation_split=0)
    assert data.train_size == 6


def test_mask_folder_names_a_mask_of_another_size(tmp_path):
    images_dir, masks_dir = make_mask_folder(tmp_path)
    save_image(masks_dir / "scan_02.png", np.zeros((12, 15), np.uint8))
    with pytest.raises(DataError, match=r"scan_02\.png.*12x15.*scan_02\.jpg.*12x16"):
        vk.data.mask_folder(images_dir, masks_dir)


def test_mask_folder_names_class_ids_beyond_the_classes(tmp_path):
    images_dir, masks_dir = make_mask_folder(tmp_path)
    save_image(masks_dir / "scan_04.png", np.full((12, 16), 6, np.uint8))
    with pytest.raises(DataError, match=r"scan_04\.png.*class ids \[6\] >= 2 classes"):
        vk.data.mask_folder(images_dir, masks_dir, class_names=["background", "top"])


def test_mask_folder_names_unknown_palette_colours(tmp_path):
    palette = {(0, 0, 0): 0, (200, 30, 30): 1, (255, 255, 255): 255}
    images_dir, masks_dir = make_mask_folder(tmp_path, palette=palette)
    with pytest.raises(DataError, match=r"colours \[\(200, 30, 30\)\] are not in the palette"):
        vk.data.mask_folder(images_dir, masks_dir, palette={(0, 0, 0): 0, (255, 255, 255): 255})


def test_flip_moves_image_and_mask_together_and_photometric_leaves_masks():
    images = np.zeros((2, 8, 12, 3), np.float32)
    images[:, :, :3] = 200.0
    masks = np.zeros((2, 8, 12), np.int32)
    masks[:, :, :3] = 1
    data = vk.data.from_arrays(images, masks=masks, class_names=["bg", "bar"],
                               validation_split=0.0, batch_size=2, seed=0,
                               augment=[keras.layers.RandomFlip("horizontal", seed=3),
                                        keras.layers.RandomContrast(0.5, value_range=(0, 255),
                                                                    seed=4)])
    for _ in range(3):
        flipped, flipped_masks = next(iter(data.train))
        flipped, flipped_masks = flipped.numpy(), flipped_masks.numpy()
        assert flipped_masks.dtype == np.int32
        for image, mask in zip(flipped, flipped_masks):
            bright = image[..., 0] > image[..., 0].min() + 1
            np.testing.assert_array_equal(bright, mask == 1)


def test_warps_mirror_the_masks_with_their_images_and_keep_ignored_pixels():
    # Each image shows its mask (class 1 -> 100, class 2 -> 200, ignore -> 50): wherever
    # the warped image shows one class's value unblended, the warped mask has that class,
    # at the mirrored border too; no black border, no ignore the image does not show.
    masks = np.ones((4, 16, 16), np.int32)
    masks[:, :, 8:] = 2
    masks[:, 1:4, :] = 255
    images = np.repeat(np.select([masks == 1, masks == 2], [100.0, 200.0], 50.0)[..., None],
                       3, axis=-1).astype(np.float32)
    data = vk.data.from_arrays(images, masks=masks, class_names=["bg", "a", "b"],
                               validation_split=0.0, batch_size=4, seed=0, augment="geometric")
    pictures, augmented = (array.numpy() for array in next(iter(data.train)))
    assert set(np.unique(augmented)) == {1, 2, 255}  # nearest: ids stay ids
    shown = pictures[..., 0]
    for value, class_id in ((100.0, 1), (200.0, 2), (50.0, 255)):
        exact = np.abs(shown - value) < 1e-3
        assert exact.sum() > 20
        assert (augmented[exact] == class_id).all()
    # What came in from outside is mirrored content, not black.
    assert shown.min() > 50 - 1e-3
    assert ((augmented == 255).sum(axis=(1, 2)) > 48).any()  # the ignore band, mirrored


def test_a_recipe_reads_a_mask_folder_with_a_palette(tmp_path):
    from visionkit.config import parse_recipe
    from visionkit.run import data_from_recipe

    palette = {(0, 0, 0): 0, (200, 30, 30): 1, (255, 255, 255): 255}
    images_dir, masks_dir = make_mask_folder(tmp_path, palette=palette)
    recipe = parse_recipe({
        "name": "folder_unet", "task": "segmentation",
        "data": {"source": "mask_folder", "images": str(images_dir), "masks": str(masks_dir),
                 "image_size": [12, 16], "class_names": ["background", "top"],
                 "palette": [{"colour": list(c), "class_id": i} for c, i in palette.items()]},
        "model": {"name": "unet", "args": {"depth": 2, "filters": 4}}})
    data = data_from_recipe(recipe)
    assert data.task.name == "segmentation" and data.class_names == ("background", "top")
    _, masks = all_batches(data.val)
    assert set(np.unique(masks)) == {0, 1, 255}
