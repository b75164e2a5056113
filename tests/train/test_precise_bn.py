"""Precise batch-norm statistics (Wu & Johnson 2021) against a NumPy reference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.precise_bn import (
    precise_batch_norm,
    recompute_batch_norm_statistics,
    trainable_batch_norm_layers,
)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def _batches(count=3, size=5, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0, 3.0, (size, 6, 6, 2)).astype("float32") for _ in range(count)]


def _reference(model, batches, layer_input):
    """Per-channel mean and (biased) variance of the layer's input over every value of
    every batch, each batch run with the layers before it in training mode (a naive loop)."""
    probe = keras.Model(model.inputs[0], model.get_layer(layer_input).output)
    values = np.concatenate([np.asarray(probe(batch, training=True)).reshape(
        -1, probe.output.shape[-1]) for batch in batches])
    return values.mean(axis=0), values.var(axis=0)


def test_statistics_are_the_average_of_each_batch_with_the_current_weights():
    model, batches = _model(), _batches()
    weights = [np.array(w) for w in model.trainable_weights]
    assert recompute_batch_norm_statistics(model, batches) == 3
    for layer, before in (("bn1", "conv1"), ("bn2", "conv2")):
        mean, variance = _reference(model, batches, before)
        np.testing.assert_allclose(model.get_layer(layer).moving_mean, mean, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(model.get_layer(layer).moving_variance, variance,
                                   rtol=1e-4, atol=1e-5)
        assert model.get_layer(layer).momentum == 0.99  # restored
    for weight, before in zip(model.trainable_weights, weights):
        np.testing.assert_array_equal(weight, before)


def test_max_batches_and_targets_in_batches():
    model, batches = _model(), _batches(count=4)
    with_targets = [(batch, np.zeros(len(batch))) for batch in batches]
    assert recompute_batch_norm_statistics(model, with_targets, max_batches=2) == 2
    mean, _ = _reference(model, batches[:2], "conv1")
    np.testing.assert_allclose(model.get_layer("bn1").moving_mean, mean, rtol=1e-5, atol=1e-5)


def test_frozen_layers_keep_their_statistics():
    model = _model()
    model.get_layer("bn1").trainable = False
    kept = np.array(model.get_layer("bn1").moving_mean)
    assert [layer.name for layer in trainable_batch_norm_layers(model)] == ["bn2"]
    recompute_batch_norm_statistics(model, _batches())
    np.testing.assert_array_equal(model.get_layer("bn1").moving_mean, kept)
    assert not np.allclose(model.get_layer("bn2").moving_mean, 0.0)


def test_nested_model_layers_are_found():
    inner = _model()
    outer = keras.Sequential([keras.Input((6, 6, 2)), inner, keras.layers.Dense(2)])
    recompute_batch_norm_statistics(outer, _batches())
    mean, _ = _reference(inner, _batches(), "conv1")
    np.testing.assert_allclose(inner.get_layer("bn1").moving_mean, mean, rtol=1e-5, atol=1e-5)


def test_no_batches_is_an_error_and_restores_momentum():
    model = _model()
    with pytest.raises(ValueError, match="at least one batch"):
        recompute_batch_norm_statistics(model, [])
    assert model.get_layer("bn1").momentum == 0.99


def test_a_model_without_batch_norm_is_left_alone():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recompute_batch_norm_statistics(model, _batches()) == 0


@pytest.mark.parametrize("value", [0, -5, 2.5, "yes"])
def test_bad_precise_bn_values_are_refused(value):
    data = vk.data.digits(image_size=(8, 8), batch_size=4, seed=0).take(8, 4)
    with pytest.raises(ValueError, match="precise_bn"):
        precise_batch_norm(_model(), data, value)


def test_fit_validates_and_returns_the_recomputed_statistics():
    """After one epoch the model fit returns holds the statistics recomputed (before the
    validation) from the first batches of the training split without augmentation; with
    precise_bn=False it holds Keras's moving averages, which differ."""
    data = vk.data.digits(image_size=(16, 16), batch_size=8, seed=0).take(48, 16)
    kwargs = {"filters": (4,)}
    held = {}
    for precise in (2 * 8, False):
        run = vk.train.fit("simple_cnn", data, epochs=1, verbose=0, seed=0, model_kwargs=kwargs,
                           precise_bn=precise, restore_best=False, checkpoint=False)
        layers = trainable_batch_norm_layers(run.model)
        assert layers, "simple_cnn has batch norm"
        held[precise] = [np.array(layer.moving_mean) for layer in layers]
        plain = data.with_augmentation(None)
        recompute_batch_norm_statistics(run.model, plain.train, max_batches=2)
        recomputed = [np.array(layer.moving_mean) for layer in layers]
        match = all(np.allclose(a, b, atol=1e-5) for a, b in zip(held[precise], recomputed))
        assert match == bool(precise), precise


class _TwoWorkers:
    """A strategy's cluster as `num_workers` reads it: two workers."""

    class cluster_resolver:  # noqa: N801 - the attribute tf.distribute strategies carry
        task_type = "worker"

        @staticmethod
        def cluster_spec():
            class Spec:
                @staticmethod
                def as_dict():
                    return {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
            return Spec()


def test_several_workers_keep_the_moving_averages_and_say_so():
    data = vk.data.digits(image_size=(8, 8), batch_size=4, seed=0).take(8, 4)
    assert precise_batch_norm(_model(), data, True) is not None
    with pytest.warns(UserWarning, match="several workers"):
        assert precise_batch_norm(_model(), data, True, _TwoWorkers()) is None
    assert precise_batch_norm(_model(), data, False) is None


def test_recomputing_leaves_the_random_streams_so_training_is_unchanged():
    """Dropout's stream is where it was: training with precise_bn (which runs the model
    in training mode before each validation) follows the same loss curve as without."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 3)(inputs))
    outputs = keras.layers.Dropout(0.5, seed=1)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    generator = model.layers[-1].seed_generator
    before = np.array(generator.state)
    recompute_batch_norm_statistics(model, _batches())
    np.testing.assert_array_equal(generator.state, before)

    data = vk.data.digits(image_size=(16, 16), batch_size=8, seed=0).take(48, 16)
    losses = [vk.train.fit("simple_cnn", data, epochs=2, verbose=0, seed=0, precise_bn=precise,
                           model_kwargs={"filters": (4,), "dropout": 0.5},
                           checkpoint=False).history["loss"] for precise in (True, False)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)


def test_layers_unfrozen_between_validations_are_recomputed():
    """Fine-tuning freezes a backbone for the first validations and unfreezes it later:
    the next recomputation sets the unfrozen layer's statistics too (a forward traced
    while it was frozen would leave them), to the NumPy mean and variance of its input."""
    from visionkit.train.precise_bn import PreciseBatchNorm

    model = _model()
    batches = _batches()
    callback = PreciseBatchNorm(model, lambda: batches, batch_size=5, images=15)
    callback.on_train_begin()
    model.get_layer("bn1").trainable = False  # the frozen "backbone"
    callback.on_epoch_begin(0)
    callback.on_test_begin()
    model.get_layer("bn1").trainable = True  # unfrozen for the second phase
    callback.on_epoch_begin(1)
    callback.on_test_begin()
    mean, variance = _reference(model, batches, "conv1")
    np.testing.assert_allclose(model.get_layer("bn1").moving_mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.get_layer("bn1").moving_variance, variance, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("value, accepted", [
    (True, True), (False, True), (256, True), (None, True),
    ("yes", False), (1.0, False), (0, False), (-3, False), (2.5, False)])
def test_a_recipe_takes_precise_bn_as_fit_does(value, accepted):
    from visionkit.config import RecipeError, parse_recipe

    recipe = {"name": "bn", "data": {"source": "digits", "image_size": [8, 8]},
              "model": {"name": "simple_cnn"}, "train": {"precise_bn": value}}
    if accepted:
        assert parse_recipe(recipe).train.precise_bn == value
    else:
        with pytest.raises(RecipeError, match="precise_bn"):
            parse_recipe(recipe)


def _two_input_model():
    """Batch norm straight on each of two image inputs: its population statistics are
    the images' own."""
    left, right = keras.Input((4, 4, 2), name="left"), keras.Input((4, 4, 3), name="right")
    normalized_left = keras.layers.BatchNormalization(name="bn_left")(left)
    normalized_right = keras.layers.BatchNormalization(name="bn_right")(right)
    pooled = [keras.layers.GlobalAveragePooling2D()(x)
              for x in (normalized_left, normalized_right)]
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()(pooled))
    return keras.Model([left, right], outputs)


def _two_input_images(count=20, seed=3):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (count, 4, 4, 2)).astype("float32"),
            rng.normal(40.0, 9.0, (count, 4, 4, 3)).astype("float32"))


def _assert_population_statistics(model, left, right):
    for name, images in (("bn_left", left), ("bn_right", right)):
        values = images.reshape(-1, images.shape[-1]).astype(np.float64)
        layer = model.get_layer(name)
        np.testing.assert_allclose(layer.moving_mean, values.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(layer.moving_variance, values.var(axis=0), rtol=1e-4)


@pytest.mark.parametrize("layout", ["tuple", "dict", "inputs_only", "dict_only"])
def test_a_two_input_model_takes_its_inputs_as_keras_fit_does(layout):
    import tensorflow as tf

    left, right = _two_input_images()
    labels = np.arange(len(left)) % 2
    elements = {"tuple": ((left, right), labels),
                "dict": ({"left": left, "right": right}, labels),
                "inputs_only": (left, right),
                "dict_only": {"left": left, "right": right}}[layout]
    # 20 images in batches of 8: the last batch holds 4 and counts for 4.
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(8)
    model = _two_input_model()
    assert recompute_batch_norm_statistics(model, dataset) == 3
    _assert_population_statistics(model, left, right)


def test_inputs_that_do_not_match_the_model_are_named():
    left, right = _two_input_images(count=8)
    model = _two_input_model()
    with pytest.raises(ValueError, match=r"takes 2 input\(s\) \(left \[None, 4, 4, 2\], "
                       r"right \[None, 4, 4, 3\]\); the first batch gave as its inputs "
                       r"1 tensor\(s\), <\[8, 4, 4, 2\]>"):
        recompute_batch_norm_statistics(model, [(left, np.zeros(8))])
    with pytest.raises(ValueError, match=r"a dict with keys \['left', 'other'\]"):
        recompute_batch_norm_statistics(model, [({"left": left, "other": right}, None)])
    assert model.get_layer("bn_left").momentum == 0.99  # restored after the error


def test_unbatched_data_and_arrays_are_refused_saying_why():
    import tensorflow as tf

    model = _model()
    images = np.concatenate(_batches())
    moving = [np.array(layer.moving_mean) for layer in trainable_batch_norm_layers(model)]
    # An unbatched dataset yields single images [6, 6, 2]: Keras failed inside the trace.
    with pytest.raises(ValueError, match=r"takes input '.*' of shape \[None, 6, 6, 2\] \(a "
                       r"batch axis first\); the first batch gave shape \[6, 6, 2\], one "
                       r"example: the data are not batched"):
        recompute_batch_norm_statistics(model, tf.data.Dataset.from_tensor_slices(images))
    with pytest.raises(ValueError, match=r"received an array of shape \[15, 6, 6, 2\]"):
        recompute_batch_norm_statistics(model, images)
    for layer, before in zip(trainable_batch_norm_layers(model), moving):
        np.testing.assert_array_equal(np.array(layer.moving_mean), before)
        assert layer.momentum == 0.99
    # The same images batched, with sample weights as fit takes them, are used.
    batched = tf.data.Dataset.from_tensor_slices(
        (images, np.zeros(15), np.ones(15))).batch(5)
    assert recompute_batch_norm_statistics(model, batched) == 3


def test_a_dict_whose_keys_miss_the_single_input_is_named():
    inputs = keras.Input((6, 6, 2), name="images")
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    images = _batches(count=1)[0]
    with pytest.raises(ValueError, match=r"takes 1 input\(s\) \(images \[None, 6, 6, 2\]\); "
                       r"the first batch gave as its inputs a dict with keys \['image'\]"):
        recompute_batch_norm_statistics(model, [({"image": images}, None)])
    assert recompute_batch_norm_statistics(model, [({"images": images}, None)]) == 1
    np.testing.assert_allclose(np.array(model.get_layer("bn").moving_mean),
                               images.reshape(-1, 2).mean(axis=0), rtol=1e-5)
