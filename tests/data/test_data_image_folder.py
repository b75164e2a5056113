"""`vk.data.image_folder`: listing, decoding, value references, bad files and errors."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import visionkit as vk
from visionkit.errors import BadFileError, DataError, DataWarning
from visionkit.testing import save_image, solid, truncated_jpeg, write_bytes

TARGET = (24, 32)  # non-square, and unlike every source size


def all_examples(data):
    """(images uint8-rounded [N, H, W, 3], labels [N]) of both splits, unbatched."""
    images, labels = [], []
    for examples in (data.train_examples, data.val_examples):
        if examples is None:
            continue
        for example in examples:
            images.append(example["images"].numpy())
            labels.append(int(example["labels"]))
    return np.stack(images), np.asarray(labels)


def test_pipeline_yields_shapes_labels_and_class_names(image_tree):
    root, expected = image_tree
    data = vk.data.image_folder(root, image_size=TARGET, batch_size=4, seed=0)
    assert data.class_names == ("cats", "dogs")
    assert data.input_shape == (24, 32, 3)
    # Hidden files and folders, .txt/.md/.tiff files are ignored: only the 11 images count.
    assert data.train_size + data.val_size == len(expected)
    images, labels = next(iter(data.train))
    assert images.dtype == tf.float32 and tuple(images.shape) == (4, 24, 32, 3)
    assert labels.dtype == tf.int32 and tuple(labels.shape) == (4,)
    val_images, _ = next(iter(data.val))
    assert tuple(val_images.shape[1:]) == (24, 32, 3)
    # Stratified split: each class has one image in validation.
    assert data.val_size == 2


def test_solid_colours_survive_decode_and_resize(image_tree):
    """Every file's colour (grayscale, RGBA, palette, GIF, BMP, JPEG) comes out at its label."""
    root, expected = image_tree
    data = vk.data.image_folder(root, image_size=TARGET, validation_split=0.0)
    images, labels = all_examples(data)
    assert images.shape == (len(expected), 24, 32, 3)
    assert images.min() >= 0 and images.max() <= 255
    found = {}
    for image, label in zip(images, labels):
        # A solid source stays solid after a bilinear resize (the antialiasing kernel's
        # float32 weights sum to 1 within ~1e-7, so 1e-3 of a grey level is allowed).
        assert np.ptp(image.reshape(-1, 3), axis=0).max() <= 2
        pixel = np.round(image[12, 16], 3)
        colour = min(expected, key=lambda c: np.abs(np.subtract(c, pixel)).max())
        class_name, tolerance = expected[colour]
        assert np.abs(pixel - np.asarray(colour)).max() <= tolerance, (colour, pixel)
        assert data.class_names[label] == class_name, colour
        found[colour] = found.get(colour, 0) + 1
    assert found == {colour: 1 for colour in expected}


def test_left_and_right_stay_put_on_a_non_square_image(tmp_path):
    """A two-tone image (left red, right blue), 20x60, resized to 24x32: no transposition."""
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:] = (0, 0, 255)
    save_image(tmp_path / "d/a/two_tone.png", pixels)
    save_image(tmp_path / "d/b/other.png", solid(20, 60, (0, 255, 0)))
    data = vk.data.image_folder(tmp_path / "d", image_size=TARGET, validation_split=0.0)
    images, labels = all_examples(data)
    image = images[list(labels).index(0)]
    np.testing.assert_array_equal(image[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(image[-1, 0], [255, 0, 0])
    np.testing.assert_array_equal(image[0, -1], [0, 0, 255])


def test_cmyk_jpeg_and_16_bit_png_decode_correctly(tmp_path):
    save_image(tmp_path / "d/a/cmyk.jpg", solid(20, 30, (200, 100, 50)), "CMYK")
    # 16-bit grayscale 40000 scales to 40000 / 257 = 155.6 in 8 bits.
    (tmp_path / "d/b").mkdir()
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(tmp_path / "d/b/deep.png")
    data = vk.data.image_folder(tmp_path / "d", image_size=(8, 8), validation_split=0.0)
    images, labels = all_examples(data)
    cmyk = images[list(labels).index(0)][4, 4]
    deep = images[list(labels).index(1)][4, 4]
    reference = np.asarray(Image.open(tmp_path / "d/a/cmyk.jpg").convert("RGB"))[10, 15]
    assert np.abs(cmyk - reference).max() <= 3
    assert np.all(np.abs(deep - 155.6) <= 1)


def test_class_names_choose_the_order(image_tree):
    root, _ = image_tree
    data = vk.data.image_folder(root, image_size=TARGET, validation_split=0.0,
                                class_names=["dogs", "cats"])
    assert data.class_names == ("dogs", "cats")
    _, labels = all_examples(data)
    assert np.bincount(labels).tolist() == [5, 6]  # 5 dogs, 6 cats
    with pytest.raises(DataError, match=r"only in 'class_names': \['birds'\]"):
        vk.data.image_folder(root, class_names=["cats", "birds", "dogs"])


def test_val_directory(tmp_path, two_class_tree):
    train = two_class_tree("train", per_class=5)
    val = two_class_tree("val", per_class=2, seed=1)
    data = vk.data.image_folder(train, image_size=(8, 8), val_directory=val)
    assert (data.train_size, data.val_size) == (10, 4)
    labels = np.concatenate([y.numpy() for _, y in data.val])
    assert sorted(labels.tolist()) == [0, 0, 1, 1]


def test_val_directory_with_other_classes_names_them(two_class_tree):
    train = two_class_tree("train", classes=("a", "b", "c"))
    val = two_class_tree("val", classes=("a", "b", "zebra"))
    with pytest.raises(DataError) as error:
        vk.data.image_folder(train, val_directory=val)
    message = str(error.value)
    assert "['c']" in message and "['zebra']" in message


def test_bad_files_raise_before_any_batch(image_tree):
    root, _ = image_tree
    truncated_jpeg(root / "cats/truncated.jpg")
    write_bytes(root / "dogs/notes.jpg", b"this is text, not a JPEG")
    with pytest.raises(BadFileError) as error:
        vk.data.image_folder(root, image_size=TARGET)
    message = str(error.value)
    assert "truncated.jpg" in message and "notes.jpg" in message
    assert "truncated" in message and "not an image" in message
    assert error.value.path.endswith("truncated.jpg")
    assert len(error.value.bad_files) == 2
    assert isinstance(error.value, ValueError)


def test_formats_tensorflow_misreads_are_bad_files(tmp_path, two_class_tree):
    root = two_class_tree("set")
    # TensorFlow ignores BMP palettes (wrong colours) and cannot decode TIFF.
    rng = np.random.default_rng(0)
    save_image(root / "a/palette.bmp", rng.integers(0, 256, (9, 9, 3), dtype=np.uint8), "P")
    save_image(root / "b/really_a_tiff.png", solid(9, 9, (1, 2, 3)), format="TIFF")
    with pytest.raises(BadFileError) as error:
        vk.data.image_folder(root)
    reasons = dict(error.value.bad_files)
    assert "BMP" in reasons[str(root / "a/palette.bmp")]
    assert "TIFF" in reasons[str(root / "b/really_a_tiff.png")]


def test_skip_bad_files_warns_once_and_loads_the_rest(image_tree):
    root, expected = image_tree
    truncated_jpeg(root / "cats/truncated.jpg")
    write_bytes(root / "dogs/notes.jpg", b"this is text, not a JPEG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = vk.data.image_folder(root, image_size=TARGET, on_bad_file="skip",
                                    validation_split=0.0)
    data_warnings = [w for w in caught if issubclass(w.category, DataWarning)]
    # One warning per reason: the bad files, and the files that are not images.
    skip_warnings = [w for w in data_warnings if "Skipped" in str(w.message)]
    assert len(skip_warnings) == 1 and len(data_warnings) == 2
    assert "picture.tiff" in str([w for w in data_warnings if w not in skip_warnings][0].message)
    message = str(skip_warnings[0].message)
    assert "Skipped 2" in message and "truncated.jpg" in message and "notes.jpg" in message
    images, _ = all_examples(data)
    assert len(images) == data.train_size == len(expected)


def test_bad_on_bad_file_and_interpolation_values(image_tree):
    root, _ = image_tree
    with pytest.raises(ValueError, match="on_bad_file"):
        vk.data.image_folder(root, on_bad_file="ignore")
    with pytest.raises(ValueError, match="interpolation"):
        vk.data.image_folder(root, interpolation="cubic")


def test_structure_errors(tmp_path, two_class_tree):
    with pytest.raises(DataError, match="does not exist"):
        vk.data.image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        vk.data.image_folder(tmp_path / "empty")
    save_image(tmp_path / "loose/x.png", solid(4, 4, (0, 0, 0)))
    with pytest.raises(DataError, match="holds 1 image directly"):
        vk.data.image_folder(tmp_path / "loose")
    one = two_class_tree("one", classes=("only",))
    with pytest.raises(DataError, match=r"at least 2 class folders.*\['only'\]"):
        vk.data.image_folder(one)
    with_empty = two_class_tree("with_empty")
    (with_empty / "c_empty").mkdir()
    (with_empty / "c_empty/readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"have none: \['c_empty'\]"):
        vk.data.image_folder(with_empty)
    no_images = tmp_path / "no_images"
    for name in ("a", "b"):
        (no_images / name).mkdir(parents=True)
    with pytest.raises(DataError, match="none of the class folders"):
        vk.data.image_folder(no_images)


def test_seeded_pipeline_repeats_exactly(two_class_tree):
    root = two_class_tree("set", per_class=12)

    def first_batches(data):
        return [(x.numpy(), y.numpy()) for x, y in data.train.take(3)]

    one = first_batches(vk.data.image_folder(root, image_size=(8, 8), batch_size=4, seed=5))
    two = first_batches(vk.data.image_folder(root, image_size=(8, 8), batch_size=4, seed=5))
    other = first_batches(vk.data.image_folder(root, image_size=(8, 8), batch_size=4, seed=6))
    for (x1, y1), (x2, y2) in zip(one, two):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(x1, x3) for (x1, _), (x3, _) in zip(one, other))


def test_cache_and_take(two_class_tree):
    root = two_class_tree("set", per_class=10)
    data = vk.data.image_folder(root, image_size=(8, 8), batch_size=4, cache=True).take(6, 2)
    labels = np.concatenate([y.numpy() for _, y in data.train])
    assert len(labels) == 6
    assert set(labels.tolist()) == {0, 1}  # examples are stored in a mixed order
    assert sum(int(y.shape[0]) for _, y in data.val) == 2


def test_scan_shows_progress_only_for_big_folders(tmp_path, capsys, two_class_tree):
    from visionkit.data.files import PROGRESS_THRESHOLD, find_bad_files, list_image_files

    root = two_class_tree("set", per_class=3)
    paths = list_image_files(str(root))
    assert len(paths) == 6 and PROGRESS_THRESHOLD == 1000
    assert find_bad_files(paths) == []
    assert capsys.readouterr().out == ""
    assert find_bad_files(paths, progress=True) == []
    assert "Checking 6 image files" in capsys.readouterr().out


def test_examples_are_decoded_and_train_shuffles_records(two_class_tree):
    root = two_class_tree("set", per_class=4)
    data = vk.data.image_folder(root, image_size=(8, 8), validation_split=0.25)
    # Consumers (e.g. export verification) read decoded example dicts from *_examples.
    for examples in (data.train_examples, data.val_examples):
        assert set(examples.element_spec) == {"images", "labels"}
        assert examples.element_spec["images"].shape == (8, 8, 3)
    # The train pipeline shuffles cheap path records and decodes afterwards.
    assert set(data.train_records.element_spec) == {"paths", "labels", "orientations"}
    with pytest.raises(ValueError, match="train_records and decode together"):
        dataclasses.replace(data, decode=None)
    labels = sorted(np.concatenate([y.numpy() for _, y in data.train]).tolist())
    assert labels == [0, 0, 0, 1, 1, 1]


def test_images_beside_the_class_folders_are_counted(two_class_tree):
    root = two_class_tree(per_class=2)
    save_image(root / "stray.png", solid(20, 30, (1, 2, 3)))
    with pytest.warns(DataWarning, match=r"Left out 1 image\(s\) lying directly in a split "
                                         r"folder, outside every class folder.*stray\.png"):
        data = vk.data.image_folder(root, image_size=TARGET, validation_split=0)
    assert data.train_size == 4


def test_the_macos_zip_metadata_folder_is_not_a_class(two_class_tree):
    # Unzipping an archive made on macOS leaves __MACOSX/<class>/._<file> next to the data.
    root = two_class_tree(per_class=2)
    write_bytes(root / "__MACOSX" / "a" / "._000.png", b"\x00\x05\x16\x07 metadata")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = vk.data.image_folder(root, image_size=TARGET, validation_split=0)
    assert data.class_names == ("a", "b") and data.train_size == 4


def test_a_link_back_to_a_parent_is_listed_once_and_a_file_in_two_classes_refused(
        two_class_tree):
    import os

    root = two_class_tree(per_class=2)
    os.symlink(os.path.join("..", "b"), root / "a" / "more")  # b's images again, in a
    with pytest.raises(DataError, match=r"2 file\(s\) are reached from several.*"
                                        r"'.*a/more/000\.png' \(a\) and '.*b/000\.png' \(b\)"):
        vk.data.image_folder(root, image_size=TARGET)
    (root / "a" / "more").unlink()
    os.symlink("..", root / "a" / "up")  # a loop: it used to fail after 40 levels
    from visionkit.data.files import list_image_files

    listed = list_image_files(str(root / "b"))
    assert [os.path.basename(p) for p in listed] == ["000.png", "001.png"]
    with pytest.raises(DataError, match=r"reached from several"):
        vk.data.image_folder(root, image_size=TARGET)


def test_a_link_to_a_missing_file_is_a_bad_file_not_a_vanished_one(two_class_tree):
    import os

    root = two_class_tree(per_class=2)
    os.symlink(root / "deleted.png", root / "a" / "gone.png")
    with pytest.raises(BadFileError, match="gone.png"):
        vk.data.image_folder(root, image_size=TARGET)
    with pytest.warns(DataWarning, match="gone.png"):
        data = vk.data.image_folder(root, image_size=TARGET, on_bad_file="skip")
    assert data.train_size + data.val_size == 4
