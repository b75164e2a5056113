"""Clear errors for bad input, and layers found inside nested sub-models."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk


def test_unknown_layer_lists_the_conv_layers(tiny_model, tiny_images):
    with pytest.raises(ValueError, match=r"no layer named 'conv9'.*\['conv1', 'conv2'\]"):
        vk.interpret.grad_cam(tiny_model, tiny_images, layer="conv9")
    with pytest.raises(ValueError, match="inner_conv1"):
        vk.interpret.filters(vk.interpret.feature_model.__globals__["keras"].Model(
            *_nested_parts()), "nope")


def _nested_parts():
    import keras

    inner_input = keras.Input((8, 8, 3))
    inner = keras.Model(inner_input, keras.layers.Conv2D(2, 3, name="inner_conv1")(inner_input),
                        name="inner")
    inputs = keras.Input((8, 8, 3))
    return inputs, keras.layers.Flatten()(inner(inputs))


def test_target_out_of_range(tiny_model, tiny_images):
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\].*target=3"):
        vk.interpret.occlusion(tiny_model, tiny_images, target=3)
    with pytest.raises(ValueError, match=r"target=\[0, -1, 1\]"):
        vk.interpret.saliency(tiny_model, tiny_images, target=[0, -1, 1])


@pytest.mark.parametrize("shape, message", [((24, 32), "shape \\(24, 32\\)"),
                                            ((1, 1, 24, 32, 3), "batch, height, width"),
                                            ((2, 24, 32, 1), "3 channels")])
def test_images_of_wrong_rank_or_channels(tiny_model, shape, message):
    with pytest.raises(ValueError, match=message):
        vk.interpret.grad_cam(tiny_model, np.zeros(shape, "float32"))


def test_find_layer_descends_into_nested_models(nested_model):
    assert vk.interpret.find_layer(nested_model, "inner_conv2").name == "inner_conv2"
    assert vk.interpret.conv_layer_names(nested_model) == ["inner_conv1", "inner_conv2"]


def test_feature_model_output_equals_the_model(nested_model):
    images = np.random.default_rng(0).uniform(0, 255, (2, 20, 28, 3)).astype("float32")
    extractor = vk.interpret.feature_model(nested_model, ["inner_conv1"])
    features, outputs = extractor(images)
    assert tuple(features.shape) == (2, 20, 28, 4)
    np.testing.assert_allclose(outputs, nested_model(images), atol=1e-6)


def test_model_ending_in_softmax_and_logits_agree_on_the_argmax_target():
    import keras

    keras.utils.set_random_seed(5)
    logits = vk.models.build("simple_cnn", (16, 20, 3), 4, filters=(4,), activation=None)
    softmax = vk.models.build("simple_cnn", (16, 20, 3), 4, filters=(4,))
    softmax.set_weights(logits.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 20, 3)).astype("float32")
    # Occlusion of class probabilities is exactly the softmax of the logits' occluded scores;
    # both must resolve the same predicted class and give maps of the same sign pattern
    # where the effects are clear.
    one = vk.interpret.grad_cam(logits, images)
    two = vk.interpret.grad_cam(softmax, images)
    assert one.shape == two.shape == (2, 16, 20)
    target = vk.interpret.resolve_target(softmax)
    np.testing.assert_array_equal(target.prepare(softmax(images))[0],
                                  target.prepare(logits(images))[0])
