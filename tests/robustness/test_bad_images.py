"""Image files as they come from the wild: broken ones are named, odd ones decode right.

Every case is built on disk here. A broken file gets a `BadFileError` naming it and the
reason, or with `on_bad_file="skip"` one `DataWarning` that counts and names it; an odd
but valid file reaches the pipeline with the pixels PIL (the reference) shows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps
from robustness_helpers import all_examples, png_16bit, png_header_only, png_with_bad_crc

import visionkit as vk
from visionkit.data import files
from visionkit.errors import BadFileError, DataError, DataWarning
from visionkit.testing import noise, save_image, truncated_jpeg, write_bytes


def _good_tree(root, per_class: int = 2):
    for name in ("a", "b"):
        for i in range(per_class):
            save_image(root / name / f"good{i}.png", noise(10, 14, seed=ord(name) + i))
    return root


BAD_FILES = {
    "truncated JPEG": (lambda p: truncated_jpeg(p / "cut.jpg"), "truncated"),
    "PNG with a bad CRC": (lambda p: png_with_bad_crc(p / "crc.png"), "checksum"),
    "zero-byte file": (lambda p: write_bytes(p / "empty.jpg", b""), "not an image"),
    "text named .jpg": (lambda p: write_bytes(p / "notes.jpg", "shopping list"), "not an image"),
    "30000x30000 header": (lambda p: png_header_only(p / "bomb.png", 30000, 30000),
                           "max_image_pixels=89,478,485"),
    # Between PIL's limit and twice it, PIL only warns and would decode 270 MB.
    "10000x9000 header": (lambda p: png_header_only(p / "big.png", 10000, 9000),
                          "max_image_pixels=89,478,485"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_named_or_skipped_with_a_counted_warning(tmp_path, case):
    make, reason = BAD_FILES[case]
    root = _good_tree(tmp_path / "set")
    bad_path = str(make(root / "b"))
    with pytest.raises(BadFileError) as error:
        vk.data.image_folder(root, image_size=(8, 8))
    assert error.value.path == bad_path
    assert reason in error.value.reason
    assert bad_path in str(error.value) and reason in str(error.value)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.image_folder(root, image_size=(8, 8), validation_split=0.0,
                                    on_bad_file="skip")
    skipped = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(skipped) == 1
    assert "Skipped 1 bad image file of 5" in str(skipped[0].message)
    assert bad_path in str(skipped[0].message)
    images, _ = all_examples(data)  # the rest decodes: nothing bad reached tf.data
    assert len(images) == data.train_size == 4


def test_huge_header_is_refused_without_decoding(tmp_path, monkeypatch):
    bomb = str(png_header_only(tmp_path / "bomb.png", 30000, 30000))
    loaded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(
        getattr(self, "filename", None)) or real_load(self))
    from PIL import ImageFile

    real_file_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(
        getattr(self, "filename", None)) or real_file_load(self))
    reason = files.check_image_file(bomb)
    assert "30000x30000 pixels (900,000,000)" in reason and "before decoding" in reason
    assert bomb not in loaded
    # PIL's own process-wide limit is back in place after the scan.
    assert Image.MAX_IMAGE_PIXELS == files.DEFAULT_MAX_IMAGE_PIXELS


def test_pixel_limit_is_configurable(tmp_path):
    root = _good_tree(tmp_path / "set")  # 14x10 = 140 pixels each
    with pytest.raises(BadFileError, match="max_image_pixels=139") as error:
        vk.data.image_folder(root, image_size=(8, 8), max_image_pixels=139)
    assert len(error.value.bad_files) == 4
    data = vk.data.image_folder(root, image_size=(8, 8), max_image_pixels=140)
    assert data.train_size + data.val_size == 4
    with pytest.raises(ValueError, match="max_image_pixels"):
        vk.data.image_folder(root, max_image_pixels=0)


def _one_image_set(tmp_path, write_image, image_size):
    """A two-class folder: class "a" holds the image under test, "b" a filler."""
    root = tmp_path / "set"
    path = write_image(root / "a")
    save_image(root / "b" / "filler.png", noise(image_size[0], image_size[1], seed=9))
    data = vk.data.image_folder(root, image_size=image_size, validation_split=0.0)
    images, labels = all_examples(data)
    return path, images[list(labels).index(0)]


def test_16_bit_png_keeps_the_high_byte_like_pil(tmp_path):
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (10, 12, 3)).astype(np.uint16)
    path, image = _one_image_set(tmp_path, lambda d: png_16bit(d / "deep.png", deep), (10, 12))
    reference = np.asarray(Image.open(path).convert("RGB"))  # PIL reads 16-bit RGB as 8-bit
    np.testing.assert_array_equal(reference, deep >> 8)
    np.testing.assert_array_equal(image, deep >> 8)  # not wrapped, not clipped
    assert np.abs(image - deep / 257).max() < 1  # within one level of exact scaling


def test_16_bit_grayscale_png_scales_to_8_bit(tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (10, 12)).astype(np.uint16)
    _, image = _one_image_set(tmp_path, lambda d: png_16bit(d / "gray16.png", deep), (10, 12))
    # PIL's convert("RGB") clips I;16 to 255, so the reference is computed here.
    expected = np.repeat((deep >> 8)[..., None], 3, axis=-1)
    np.testing.assert_array_equal(image, expected)


def test_cmyk_jpeg_has_pils_colours(tmp_path):
    rows, columns = np.mgrid[0:32, 0:48]
    smooth = np.stack([columns * 5, rows * 7, (rows + columns) * 3], -1).astype(np.uint8)
    path, image = _one_image_set(
        tmp_path, lambda d: save_image(d / "print.jpg", smooth, "CMYK", quality=95), (32, 48))
    assert Image.open(path).mode == "CMYK"
    reference = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    # Two JPEG decoders agree to a few levels on smooth content; wrong CMYK handling
    # (inverted Adobe channels, K ignored) is off by tens to hundreds.
    assert np.abs(image - reference).max() <= 3
    assert np.abs(image - smooth).mean() < 2


def test_palette_png_with_transparency_and_grayscale_become_rgb(tmp_path):
    pixels = noise(10, 12, seed=3)
    root = tmp_path / "set"
    palette = Image.fromarray(pixels).convert("P")
    (root / "a").mkdir(parents=True)
    palette.save(root / "a" / "palette.png", transparency=0)
    save_image(root / "b" / "gray.png", pixels[..., 0], "L")
    save_image(root / "b" / "rgb.png", pixels)
    data = vk.data.image_folder(root, image_size=(10, 12), validation_split=0.0)
    images, labels = all_examples(data)
    assert images.shape[-1] == 3
    with Image.open(root / "a" / "palette.png") as stored:
        assert stored.mode == "P" and "transparency" in stored.info
        expected_palette = np.asarray(stored.convert("RGB"))
    np.testing.assert_array_equal(images[list(labels).index(0)], expected_palette)
    grays = [img for img, label in zip(images, labels)
             if label == 1 and np.array_equal(img[..., 0], img[..., 1])]
    assert len(grays) == 1
    np.testing.assert_array_equal(grays[0], np.repeat(pixels[..., :1], 3, axis=-1))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_jpeg_is_upright_as_a_viewer_shows_it(tmp_path, orientation):
    stored = noise(24, 40, seed=orientation, block=8)  # 40 wide, 24 high as stored
    shown = (24, 40) if orientation == 3 else (40, 24)
    path, image = _one_image_set(
        tmp_path, lambda d: save_image(d / "photo.jpg", stored, orientation=orientation, quality=95),
        shown)
    with Image.open(path) as opened:
        assert opened.getexif()[0x0112] == orientation
        reference = np.asarray(ImageOps.exif_transpose(opened)).astype(np.float32)
    assert image.shape[:2] == reference.shape[:2] == shown
    assert np.abs(image - reference).mean() < 2  # JPEG decoders differ by a few levels
    # TensorFlow alone ignores the tag: the stored pixels are far from the reference.
    raw = tf.io.decode_jpeg(path.read_bytes(), channels=3).numpy().astype(np.float32)
    if raw.shape == reference.shape:
        assert np.abs(raw - reference).mean() > 30


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_apply_orientation_matches_pil_exif_transpose(tmp_path, orientation):
    pixels = noise(5, 7, seed=orientation)
    path = save_image(tmp_path / "o.png", pixels, orientation=orientation)
    scan = files.scan_image_files([str(path)])
    assert scan.bad == [] and scan.orientations[str(path)] == orientation
    with Image.open(path) as opened:
        reference = np.asarray(ImageOps.exif_transpose(opened))
    np.testing.assert_array_equal(files.apply_orientation(pixels, orientation).numpy(),
                                  reference)


def test_non_ascii_and_space_file_names(tmp_path):
    root = tmp_path / "données d'été"
    save_image(root / "chats" / "café au lait 1.png", noise(8, 8, 1))
    save_image(root / "chats" / "日本 語.jpg", noise(8, 8, 2))
    save_image(root / "chiens" / "ü ö ä.png", noise(8, 8, 3))
    data = vk.data.image_folder(root, image_size=(8, 8), validation_split=0.0)
    assert len(all_examples(data)[0]) == 3
    bad = str(write_bytes(root / "chiens" / "façade ß.jpg", b"not a jpeg"))
    with pytest.raises(BadFileError) as error:
        vk.data.image_folder(root, image_size=(8, 8))
    assert error.value.path == bad and bad in str(error.value)


def test_empty_class_folder_is_named(tmp_path):
    root = _good_tree(tmp_path / "set")
    (root / "c").mkdir()
    write_bytes(root / "c" / "readme.txt", "no images yet")
    with pytest.raises(DataError, match=r"have none: \['c'\]"):
        vk.data.image_folder(root)


def test_train_and_validation_class_folders_that_differ_are_named(tmp_path):
    train = _good_tree(tmp_path / "train")
    val = _good_tree(tmp_path / "val")
    (val / "b").rename(val / "bee")
    with pytest.raises(DataError) as error:
        vk.data.image_folder(train, val_directory=val)
    assert "only in" in str(error.value)
    assert "['b']" in str(error.value) and "['bee']" in str(error.value)


def _mask_set(root, stems=("x", "y", "z")):
    for i, stem in enumerate(stems):
        save_image(root / "images" / f"{stem}.png", noise(6, 8, seed=i))
        save_image(root / "masks" / f"{stem}.png", (np.arange(48).reshape(6, 8) % 2).astype(np.uint8))
    return root / "images", root / "masks"


@pytest.mark.parametrize("second", ["x.bmp", "x.jpg"])
def test_two_masks_with_one_stem_are_named(tmp_path, second):
    images, masks = _mask_set(tmp_path)
    save_image(masks / second, np.zeros((6, 8), np.uint8))
    with pytest.raises(DataError) as error:
        vk.data.mask_folder(images, masks, image_size=(6, 8))
    message = str(error.value)
    assert str(masks / "x.png") in message and str(masks / second) in message
    assert "2 masks for stem 'x'" in message


def test_a_jpeg_mask_is_refused_as_lossy(tmp_path):
    images, masks = _mask_set(tmp_path)
    (masks / "y.png").unlink()
    save_image(masks / "y.jpg", np.zeros((6, 8), np.uint8))
    with pytest.raises(DataError, match="lossy") as error:
        vk.data.mask_folder(images, masks, image_size=(6, 8))
    assert str(images / "y.png") in str(error.value)


def test_bad_image_or_mask_in_a_mask_folder(tmp_path):
    images, masks = _mask_set(tmp_path)
    bad = str(truncated_jpeg(images / "w.jpg"))
    save_image(masks / "w.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(BadFileError) as error:
        vk.data.mask_folder(images, masks, image_size=(6, 8))
    assert error.value.path == bad and "truncated" in error.value.reason
    with pytest.warns(DataWarning, match="Skipped 1 of 4 image/mask pairs") as caught:
        data = vk.data.mask_folder(images, masks, image_size=(6, 8), validation_split=0.0,
                                   on_bad_file="skip")
    assert bad in str(caught[0].message)
    assert data.train_size == 3


def test_exif_rotated_image_lines_up_with_its_displayed_mask(tmp_path):
    stored = noise(8, 12, seed=5, block=4)  # 12 wide, 8 high as stored; shown 8x12 turned
    shown = np.asarray(ImageOps.exif_transpose(
        Image.open(save_image(tmp_path / "images" / "p.png", stored, orientation=6))))
    mask = (shown[..., 0] > 127).astype(np.uint8)  # drawn on the image as displayed
    save_image(tmp_path / "masks" / "p.png", mask)
    save_image(tmp_path / "images" / "q.png", noise(12, 8, seed=6))
    save_image(tmp_path / "masks" / "q.png", np.zeros((12, 8), np.uint8))
    data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=(12, 8),
                               validation_split=0.0, class_names=["dark", "bright"])
    for example in data.train_examples:
        image = example["images"].numpy()
        if np.array_equal(image, shown):
            np.testing.assert_array_equal(example["segmentation_masks"].numpy(), mask)
            break
    else:
        pytest.fail("the EXIF-rotated image did not reach the pipeline upright")
