"""Batch normalization over too few values per channel is said before training."""

from __future__ import annotations

import warnings

import keras
import pytest

from visionkit.train.batch_statistics import (
    MIN_VALUES_PER_CHANNEL,
    batch_norm_sample_counts,
    check_batch_norm_statistics,
    smallest_batch,
)


def _pooled_classifier(map_size: tuple[int, int], image: int = 8) -> keras.Model:
    """A conv whose valid output is `map_size`, batch norm on it, then a classifier."""
    inputs = keras.Input((image, image, 3))
    features = keras.layers.Conv2D(4, (image - map_size[0] + 1, image - map_size[1] + 1),
                                   name="conv")(keras.layers.Rescaling(1 / 255)(inputs))
    features = keras.layers.BatchNormalization(name="bn")(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features))


@pytest.mark.parametrize(("map_size", "batch", "values"), [
    ((1, 1), 1, 1), ((1, 1), 2, 2), ((1, 2), 1, 2)])
def test_too_few_values_per_channel_are_counted(map_size, batch, values):
    counts = batch_norm_sample_counts(_pooled_classifier(map_size), batch)
    positions = map_size[0] * map_size[1]
    assert [(c.layer, c.positions, c.values_per_channel) for c in counts] == [
        ("bn", positions, values)]
    # The batch named is the smallest that reaches the minimum, by hand: ceil(3 / positions).
    assert counts[0].batch_needed == {1: 3, 2: 2}[positions]
    assert batch_norm_sample_counts(_pooled_classifier(map_size),
                                    counts[0].batch_needed) == []


@pytest.mark.parametrize(("map_size", "batch"), [((1, 1), 3), ((1, 2), 2), ((4, 4), 1)])
def test_enough_values_per_channel_pass(map_size, batch):
    assert batch_norm_sample_counts(_pooled_classifier(map_size), batch) == []


def test_frozen_nested_and_dense_batch_norm():
    inner = keras.Sequential([keras.Input((1, 1, 4)), keras.layers.BatchNormalization(
        name="inner_bn")], name="block")
    inputs = keras.Input((1, 1, 4))
    features = keras.layers.BatchNormalization(name="frozen_bn")(inner(inputs))
    vector = keras.layers.BatchNormalization(name="dense_bn")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, vector)
    model.get_layer("frozen_bn").trainable = False  # inference statistics: nothing to warn
    counts = batch_norm_sample_counts(model, 2)
    # Nested layers are named by path; a [batch, features] batch norm has 1 position.
    assert [(c.layer, c.values_per_channel) for c in counts] == [
        ("block/inner_bn", 2), ("dense_bn", 2)]
    assert batch_norm_sample_counts(model, MIN_VALUES_PER_CHANNEL) == []


def test_variable_image_size_is_not_guessed():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    assert batch_norm_sample_counts(model, 1) == []


def test_the_warning_names_layers_sizes_and_the_batch_needed():
    with pytest.warns(UserWarning) as caught:
        check_batch_norm_statistics(_pooled_classifier((1, 1)), 2)
    message = str(caught[0].message)
    assert "1 batch-normalization layer(s)" in message
    assert "bn (1 position(s) per image -> 2 value(s))" in message
    assert "batch of 2" in message and "batch of at least 3" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_batch_norm_statistics(_pooled_classifier((1, 1)), 3)



def test_the_last_batch_of_an_epoch_is_checked_too():
    # 18 images in batches of 8 end each epoch with a batch of 2: a 1x1 map then
    # normalizes 2 values per channel, as a batch of 2 does.
    assert smallest_batch(8, 18) == 2 and smallest_batch(8, 16) == 8
    with pytest.warns(UserWarning) as caught:
        counts = check_batch_norm_statistics(_pooled_classifier((1, 1)), 8, train_size=18)
    assert [(count.layer, count.values_per_channel) for count in counts] == [("bn", 2)]
    message = str(caught[0].message)
    assert "last batch of each epoch (18 training images in batches of 8 leave 2)" in message
    assert "divides 18 or leaves at least 3" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_batch_norm_statistics(_pooled_classifier((1, 1)), 8, train_size=16)
        check_batch_norm_statistics(_pooled_classifier((1, 1)), 8, train_size=19)
    # Two replicas split a batch of 8 into 4 each and the remainder of 2 into 1 each.
    with pytest.warns(UserWarning, match="leaves at least 6"):
        check_batch_norm_statistics(_pooled_classifier((1, 1)), 8, train_size=18, replicas=2)


def test_fit_warns_about_the_last_batch_before_the_first_step(tmp_path):
    import numpy as np

    import visionkit as vk

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (18, 8, 8, 3)).astype("uint8")
    data = vk.data.from_arrays(images, np.arange(18) % 10, batch_size=8,
                               validation_split=0.0, seed=0)
    with pytest.warns(UserWarning, match="last batch of each epoch"):
        vk.train.fit(_pooled_classifier((1, 1)), data, epochs=1, steps_per_epoch=1,
                     run_dir=tmp_path, verbose=0, evaluate=False, plots=False,
                     tensorboard=False, backup=False, checkpoint=False)
