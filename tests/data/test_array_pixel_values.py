"""Arrays of images prepared for another library (scaled to 0..1 or -1..1, 16-bit, NaN)
are refused naming the array; raw pixels pass through unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import visionkit as vk
from visionkit.data.detection import detection_from_arrays

RAW = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3)).astype(np.uint8)
LABELS = np.arange(6) % 2
MASKS = (RAW[..., 0] > 127).astype(np.int32)

SCALED = {
    "0..1 (x / 255)": (RAW / 255.0, r"float values in \[0, 1\]: they look scaled "
                                    r"to 0\.\.1.*images \* 255"),
    "-1..1 (x / 127.5 - 1)": (RAW / 127.5 - 1, r"values in \[-1, .*images\[0\].*-1\.\.1"),
    "16-bit": (RAW.astype(np.uint16) * 257, r"values in \[0, 65535\].*16-bit"),
    "NaN": (np.where(RAW == RAW.max(), np.nan, RAW.astype(np.float32)),
            r"finite pixels in images.*the first in images\[\d\]"),
    "bool": (RAW > 127, r"received dtype bool"),
}


@pytest.mark.parametrize("case", sorted(SCALED))
def test_classification_arrays_not_in_raw_pixels_are_refused(case):
    images, message = SCALED[case]
    with pytest.raises(ValueError, match=message):
        vk.data.from_arrays(images, LABELS)


@pytest.mark.parametrize("case", sorted(SCALED))
def test_segmentation_and_detection_arrays_not_in_raw_pixels_are_refused(case):
    images, message = SCALED[case]
    with pytest.raises(ValueError, match=message):
        vk.data.from_arrays(images, masks=MASKS)
    boxes = [np.array([[0, 0, 2, 2]], np.float32)] * len(images)
    with pytest.raises(ValueError, match=message):
        detection_from_arrays(images, boxes, [np.array([0])] * len(images), ["thing"])


def test_the_val_images_are_checked_by_their_name():
    with pytest.raises(ValueError, match=r"val_images.*scaled to 0\.\.1"):
        vk.data.from_arrays(RAW, LABELS, val_images=RAW / 255.0, val_labels=LABELS)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.int64])
def test_raw_pixels_pass_unchanged(dtype):
    data = vk.data.from_arrays(RAW.astype(dtype), LABELS, validation_split=0, batch_size=6)
    images = np.concatenate([batch[0].numpy() for batch in data.train])
    # The train split is shuffled: compare the sorted per-image sums.
    np.testing.assert_array_equal(np.sort(images.sum(axis=(1, 2, 3))),
                                  np.sort(RAW.astype(np.float64).sum(axis=(1, 2, 3))))


def test_black_images_and_string_labels():
    # An all-zero float array is raw pixels (nothing says it was scaled).
    vk.data.from_arrays(np.zeros((4, 4, 4, 3), np.float32), np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"class ids in labels; received dtype <U3 "
                                         r"\(names\? pass class ids and class_names=\)"):
        vk.data.from_arrays(RAW, np.array(["cat", "dog"] * 3))


def test_detection_arrays_with_fewer_labels_than_images_are_refused():
    boxes = [np.array([[0, 0, 2, 2]], np.float32)] * len(RAW)
    with pytest.raises(ValueError, match=r"6 boxes arrays and 5 labels arrays"):
        detection_from_arrays(RAW, boxes, [np.array([0])] * 5, ["thing"])


def test_labels_counted_from_one_are_said():
    with pytest.warns(vk.errors.DataWarning, match=r"Class ids \[0\] have no image.*"
                                                   r"labels counted from 1\?"):
        data = vk.data.from_arrays(RAW, LABELS + 1)
    assert data.class_names == ("0", "1", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("error", vk.errors.DataWarning)
        vk.data.from_arrays(RAW, LABELS + 1, class_names=["none", "cat", "dog"])


def test_validation_labels_beyond_the_classes_are_refused_and_count_when_inferred():
    with pytest.raises(ValueError, match=r"val_labels in \[0, 1\] for 2 classes; received "
                                         r"val_labels from 0 to 5"):
        vk.data.from_arrays(RAW, LABELS, class_names=["cat", "dog"], val_images=RAW[:3],
                            val_labels=np.array([0, 1, 5]))
    # Without class_names, a class only the validation images hold is a class.
    data = vk.data.from_arrays(RAW, LABELS, val_images=RAW[:3], val_labels=np.array([0, 1, 2]))
    assert data.class_names == ("0", "1", "2")
    assert sorted(int(e["labels"]) for e in data.val_examples) == [0, 1, 2]
