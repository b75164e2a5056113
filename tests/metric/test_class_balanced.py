"""P x K class-balanced batches from classification data (arrays and image folders)."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.testing import save_image, solid


def _coded_arrays(counts, size=8):
    """Image i of class c is filled with (c * 20, i, 0): its class and index in pixels."""
    images, labels = [], []
    for label, count in enumerate(counts):
        for index in range(count):
            images.append(solid(size, size, (label * 20, index, 0)))
            labels.append(label)
    return np.stack(images), np.array(labels)


def _check_batch(images, labels, classes_per_batch, images_per_class, distinct=True):
    images, labels = np.asarray(images), np.asarray(labels)
    assert len(labels) == classes_per_batch * images_per_class
    groups = labels.reshape(classes_per_batch, images_per_class)
    assert np.all(groups == groups[:, :1])  # K consecutive images per class
    assert len(np.unique(groups[:, 0])) == classes_per_batch  # P distinct classes
    # The pixels agree with the labels (records and decoding stayed paired).
    np.testing.assert_allclose(np.round(images[:, 0, 0, 0] / 20), labels)
    if distinct:
        for row in range(classes_per_batch):
            block = slice(row * images_per_class, (row + 1) * images_per_class)
            assert len(np.unique(np.round(images[block, 0, 0, 1]))) == images_per_class


def test_batches_hold_p_classes_of_k_distinct_images_and_repeat_with_a_seed():
    images, labels = _coded_arrays([9, 7, 8, 6, 10])
    data = vk.data.from_arrays(images, labels, validation_split=0.2, seed=3, batch_size=5)
    balanced = vk.data.class_balanced(data, classes_per_batch=3, images_per_class=4)
    assert balanced.task.name == "embedding" and balanced.batch_size == 12
    assert balanced.steps_per_epoch == data.train_size // 12
    first = [(np.asarray(x), np.asarray(y)) for x, y in balanced.train]
    assert len(first) == balanced.steps_per_epoch
    for batch_images, batch_labels in first:
        _check_batch(batch_images, batch_labels, 3, 4)
    again = [np.asarray(y) for _, y in balanced.with_augmentation("none").train]
    assert all(np.array_equal(a, b) for (_, a), b in zip(first, again))
    # Validation is the source's, in its order.
    assert np.array_equal(np.concatenate([y for _, y in balanced.val]),
                          np.concatenate([y for _, y in data.val]))
    # Across a few epochs every class is drawn.
    stream = balanced.train_from_epoch(0).take(6)
    assert set(np.concatenate([np.asarray(y) for _, y in stream]).tolist()) == set(range(5))


def test_image_folder_records_are_sampled_before_decoding(tmp_path):
    for label, count in enumerate([5, 6, 4]):
        for index in range(count):
            save_image(tmp_path / f"class_{label}" / f"{index}.png",
                       solid(12, 10, (label * 20, index, 0)))
    data = vk.data.image_folder(str(tmp_path), image_size=(8, 8), validation_split=0.0,
                                seed=0)
    balanced = vk.data.class_balanced(data, classes_per_batch=2, images_per_class=3,
                                      steps_per_epoch=4)
    assert balanced.train_records is not None  # files are read after the draw
    batches = list(balanced.train)
    assert len(batches) == 4
    for batch_images, batch_labels in batches:
        _check_batch(batch_images, batch_labels, 2, 3)


def test_small_classes_are_said_and_bad_requests_are_errors():
    images, labels = _coded_arrays([6, 2, 1, 5])
    data = vk.data.from_arrays(images, labels, validation_split=0.0, seed=0)
    with pytest.warns(UserWarning) as caught:
        vk.data.class_balanced(data, classes_per_batch=2, images_per_class=3)
    text = " ".join(str(w.message) for w in caught)
    assert "single training image" in text and "'2'" in text
    assert "fewer than images_per_class=3" in text and "'1'" in text
    with pytest.raises(ValueError, match="classes_per_batch=5 needs at least that many"):
        vk.data.class_balanced(data, classes_per_batch=5, images_per_class=2)
    with pytest.raises(ValueError, match="images_per_class as an integer >= 2"):
        vk.data.class_balanced(data, classes_per_batch=2, images_per_class=1)
    segmentation = vk.data.shapes("segmentation", n=8, image_size=(16, 16), seed=0)
    with pytest.raises(ValueError, match="single-label classification"):
        vk.data.class_balanced(segmentation)
