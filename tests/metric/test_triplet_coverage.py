"""Training an embedding on batches without triplets says so (the loss is silently 0)."""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.triplet_coverage import AnchorsWithTriplets, TripletCoverage

SHAPE = (16, 16, 3)


def _reference(labels):
    """Naive loop: does each image have another of its class and one of another?"""
    return np.mean([any(labels[j] == labels[i] for j in range(len(labels)) if j != i)
                    and any(labels[j] != labels[i] for j in range(len(labels)))
                    for i in range(len(labels))])


@pytest.mark.parametrize("labels", [[0, 0, 1, 2], [3, 3, 3, 3], [0, 1, 2, 3],
                                    [0, 1, 1, 0, 2, 2, 5]])
def test_the_metric_matches_a_naive_count(labels):
    metric = AnchorsWithTriplets()
    metric.update_state(np.array(labels, np.int64), np.zeros((len(labels), 3), "float32"))
    assert float(metric.result()) == pytest.approx(_reference(labels))


def _model():
    backbone = keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3, strides=2)])
    return vk.models.build("siamese", input_shape=SHAPE, backbone=backbone, embedding_dim=4)


@pytest.mark.slow
def test_fit_on_plain_batches_warns_and_on_class_balanced_batches_does_not():
    keras.utils.set_random_seed(0)
    data = vk.data.digits(image_size=SHAPE[:2], batch_size=4, seed=0).take(40, 8)
    plain = dataclasses.replace(data, task="embedding")  # shuffled batches of 4 of 10 digits
    with pytest.warns(UserWarning, match=r"only \d+% of the training images") as caught:
        run = vk.train.fit(_model(), plain, epochs=1, verbose=0)
    # Validation batches of 4 of 10 digits leave images out of val_loss too: said.
    assert [w for w in caught if "of the validation images" in str(w.message)]
    assert run.history["anchors_with_triplets"][0] < 1.0
    balanced = vk.data.class_balanced(data, classes_per_batch=2, images_per_class=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = vk.train.fit(_model(), balanced, epochs=1, verbose=0)
    assert run.history["anchors_with_triplets"] == [1.0]
    assert not [w for w in caught if "training images had both" in str(w.message)]


def test_the_callback_warns_once_per_split_below_one():
    callback = TripletCoverage()
    with pytest.warns(UserWarning) as caught:
        callback.on_epoch_end(0, {"anchors_with_triplets": 0.25,
                                  "val_anchors_with_triplets": 0.5})
        callback.on_epoch_end(1, {"anchors_with_triplets": 0.0,
                                  "val_anchors_with_triplets": 0.0})
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "only 25% of the training images" in messages[0]
    assert "only 50% of the validation images" in messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TripletCoverage().on_epoch_end(0, {"anchors_with_triplets": 1.0,
                                           "val_anchors_with_triplets": 1.0})
