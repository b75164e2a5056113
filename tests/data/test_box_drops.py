"""Boxes an augmentation drops are counted, and boxes that were already under a pixel
before augmenting are told apart from those the augmentation moved out."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.augment import build_augmenter
from visionkit.data.box_drops import DroppedBoxes
from visionkit.vocabulary import get_task


def _said(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if "dropped" in str(w.message)]


def test_a_box_under_a_pixel_before_augmenting_is_named_as_the_datas():
    counter = DroppedBoxes("example")
    labels = np.array([[3, 4, -1]])
    boxes = np.array([[[2, 2, 2.5, 9], [0, 0, 6, 6], [-1, -1, -1, -1]]], np.float32)
    lost, said = _said(lambda: counter.record(labels, np.array([[-1, -1, -1]]), boxes))
    assert lost == 2 and (counter.boxes, counter.dropped) == (2, 2)
    assert len(said) == 1
    assert "dropped 2 of the 2 boxes" in said[0] and "class ids [3, 4]" in said[0]
    assert "1 of them were already narrower or lower than 1.0 pixel inside the image before " \
        "augmenting" in said[0]


def test_drops_the_augmentation_made_are_not_blamed_on_the_data():
    counter = DroppedBoxes("example")
    boxes = np.array([[[0, 0, 6, 6]]], np.float32)
    _, said = _said(lambda: counter.record(np.array([[1]]), np.array([[-1]]), boxes))
    assert len(said) == 1 and "already" not in said[0]


def test_keras_layers_name_a_sub_pixel_box_of_the_data():
    # A flip keeps every box inside the image; the half-pixel-wide box is dropped by the
    # clean-up after it, and the warning says the box was already that thin.
    augment = build_augmenter([keras.layers.RandomFlip("horizontal",
                                                       bounding_box_format="xyxy", seed=1)],
                              get_task("detection"))
    batch = {"images": tf.zeros([1, 8, 8, 3]),
             "bounding_boxes": {"boxes": tf.constant([[[1, 1, 1.5, 6], [1, 1, 5, 5]]]),
                                "labels": tf.constant([[0, 2]], tf.int32)}}
    out, said = _said(lambda: augment(batch))
    assert out["bounding_boxes"]["labels"].numpy().tolist() == [[-1, 2]]
    assert len(said) == 1 and "dropped 1 of the 2 boxes" in said[0]
    assert "1 of them were already narrower" in said[0]


def test_only_dropped_boxes_that_were_unusable_before_augmenting_are_blamed_on_the_data():
    # A zoom by 3 keeps the 0.5-pixel box (1.5 pixels after) and moves the corner box
    # out; the third box lies outside the 32x32 image before augmenting.
    import albumentations as A

    from visionkit.data.albumentations_bridge import _apply

    compose = A.Compose([A.Affine(scale=3.0, p=1.0)], bbox_params=A.BboxParams(
        format="pascal_voc", label_fields=["labels"]))
    boxes = np.array([[15.8, 15.8, 16.3, 16.3], [0, 0, 4, 4], [40, 40, 50, 50],
                      [-1, -1, -1, -1]], np.float32)
    labels = np.array([1, 2, 3, -1], np.int32)
    counter = DroppedBoxes("zoom")
    out, said = _said(lambda: _apply(compose, np.array([1, 2]), np.zeros((32, 32, 3), np.uint8),
                                     (boxes, labels), False, True, ("labels",), counter))
    assert list(out[2]) == [1, -1, -1, -1]
    assert (counter.boxes, counter.dropped) == (3, 2)
    assert len(said) == 1 and "(class ids [2, 3])" in said[0]
    assert "1 of them were already narrower or lower than 1.0 pixel inside the image" in said[0]

    # Kept in place (Keras layers, presets): the tiny box kept is not blamed either.
    counter = DroppedBoxes("in place")
    _, said = _said(lambda: counter.record(labels, np.array([1, -1, -1, -1]), boxes,
                                           (32, 32)))
    assert "1 of them were already" in said[0]
