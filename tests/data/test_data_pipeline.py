"""`Data`: seeded determinism, augmentation on train only, labels untouched, variants."""

from __future__ import annotations

import dataclasses
import pickle

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.errors import BadFileError

SIZE = (16, 16)


def digits(**kwargs):
    return vk.data.digits(image_size=SIZE, batch_size=32, **kwargs)


def batches(dataset, count=3):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def assert_same(first, second):
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_seeded_train_batches_repeat_across_fresh_data_objects():
    first = batches(digits(seed=11, augment="standard").train)
    second = batches(digits(seed=11, augment="standard").train)
    assert_same(first, second)
    other = batches(digits(seed=12, augment="standard").train)
    assert not np.array_equal(first[0][1], other[0][1])


def test_reshuffles_each_epoch():
    data = digits(seed=0)
    epoch_one = batches(data.train, 1)
    train = data.train
    first_pass = [y.numpy() for _, y in train.take(1)]
    second_pass = [y.numpy() for _, y in train.take(1)]
    np.testing.assert_array_equal(first_pass[0], epoch_one[0][1])
    assert not np.array_equal(first_pass[0], second_pass[0])


def test_validation_is_not_augmented_but_train_is():
    plain = digits(seed=4)
    augmented = plain.with_augmentation("standard")
    assert augmented.augment == "standard" and plain.augment == "none"
    assert_same(batches(plain.val, 100), batches(augmented.val, 100))
    plain_train, augmented_train = batches(plain.train, 2), batches(augmented.train, 2)
    for (x1, y1), (x2, y2) in zip(plain_train, augmented_train):
        np.testing.assert_array_equal(y1, y2)  # same order, labels untouched
        assert np.abs(x1 - x2).mean() > 1.0  # images changed
        assert x2.dtype == np.float32 and x2.shape == x1.shape


class Blackout(keras.layers.Layer):
    """A user layer that only understands image tensors (a dict would make it fail)."""

    def call(self, inputs):
        return inputs * 0.0


def test_user_layers_see_images_only_and_labels_stay():
    plain = digits(seed=1)
    blacked = plain.with_augmentation([Blackout()])
    for (_, y1), (x2, y2) in zip(batches(plain.train, 2), batches(blacked.train, 2)):
        np.testing.assert_array_equal(y1, y2)
        assert np.all(x2 == 0.0)


def test_callable_augment_gets_the_batch_dict():
    seen = {}

    def brighten(batch):
        seen["keys"] = sorted(batch)
        return {**batch, "images": batch["images"] * 0.0 + 7.0}

    data = digits(seed=1, augment=brighten)
    images, _ = next(iter(data.train))
    assert seen["keys"] == ["images", "labels"]
    assert np.all(images.numpy() == 7.0)


def test_augment_validation_names_the_bad_item():
    with pytest.raises(TypeError, match=r"item 1 is 'flip'"):
        digits(augment=[keras.layers.RandomFlip(), "flip"])
    with pytest.raises(TypeError, match="RandomFlip"):
        digits(augment=[keras.layers.RandomFlip])
    with pytest.raises(TypeError, match="Instantiate"):
        digits(augment=keras.layers.RandomFlip)
    with pytest.raises(ValueError, match="Unknown augmentation preset 'heavy'"):
        digits(augment="heavy")
    with pytest.raises(TypeError, match="int"):
        digits().with_augmentation(3)
    assert digits().with_augmentation(None).augment == "none"


def test_take_and_with_batch_size():
    data = digits(seed=0).take(50, 20).with_batch_size(8)
    assert (data.train_size, data.val_size, data.batch_size) == (50, 20, 8)
    assert data.steps_per_epoch == 7 and data.validation_steps == 3
    sizes = [int(y.shape[0]) for _, y in data.train]
    assert sizes == [8] * 6 + [2]
    assert sum(int(y.shape[0]) for _, y in data.val) == 20
    described = data.describe()
    assert described["train_size"] == 50 and described["batch_size"] == 8
    assert described["deterministic"] is True


def test_unseeded_or_non_deterministic_pipelines_still_run():
    parallel = dataclasses.replace(digits(seed=0, augment="light"), deterministic=False)
    assert not parallel.is_deterministic
    for data in (digits(seed=None, augment="light"), parallel):
        assert data.val is not None
        images, labels = next(iter(data.train))
        assert tuple(images.shape) == (32, *SIZE, 3) and labels.shape == (32,)


def test_bad_file_error_fields_message_and_pickling():
    error = BadFileError("a/x.jpg", "truncated or corrupt (image file is truncated)",
                         others=[("b/y.png", "not an image file")])
    assert error.path == "a/x.jpg" and error.reason.startswith("truncated")
    message = str(error)
    assert "Expected" in message and "a/x.jpg" in message and "b/y.png" in message
    again = pickle.loads(pickle.dumps(error))
    assert again.bad_files == error.bad_files and str(again) == message


def test_public_names():
    assert set(vk.data.__all__) == {"Data", "digits", "shapes", "image_folder", "from_arrays",
                                    "PRESETS", "mask_folder", "coco", "voc", "yolo",
                                    "profile", "check", "Preprocessing", "load_images",
                                    "multilabel_csv", "multilabel_from_lists", "class_balanced"}
    assert vk.data.PRESETS == ("none", "light", "standard", "geometric")
