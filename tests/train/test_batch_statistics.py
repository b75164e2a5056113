"""Batch normalization over too few values per channel is said before training."""

from __future__ import annotations

import warnings

import keras
import pytest

from visionkit.train.batch_statistics import (
    MIN_VALUES_PER_CHANNEL,
    batch_norm_sample_counts,
    check_batch_norm_statistics,
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

