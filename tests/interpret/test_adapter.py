"""The model adapter on the model shapes users bring, and the refusals that name what to
change (each case seen on the tf-keras-vis, tf-explain and keras trackers)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret import ArgumentError, ModelAdapter

IMAGES = np.random.default_rng(3).uniform(0, 255, (2, 12, 12, 3)).astype("float32")


def _layers():
    return [keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Conv2D(4, 3, activation="relu", name="valid_conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, name="logits")]


def test_sequential_built_without_input_is_explained_like_its_functional_twin():
    keras.utils.set_random_seed(0)
    sequential = keras.Sequential(_layers())
    sequential.build((None, 12, 12, 3))
    inputs = keras.Input((12, 12, 3))
    x = inputs
    for layer in sequential.layers:
        x = layer(x)
    functional = keras.Model(inputs, x)
    for method in (vk.interpret.grad_cam, vk.interpret.saliency):
        np.testing.assert_allclose(method(sequential, IMAGES, target=1),
                                   method(functional, IMAGES, target=1), rtol=1e-5, atol=1e-7)
    maps = vk.interpret.activations(sequential, IMAGES)
    assert sorted(maps) == ["conv", "valid_conv"]


def test_models_without_a_known_input_are_refused_naming_the_model():
    never_built = keras.Sequential(_layers())
    with pytest.raises(ArgumentError, match="no known input shape") as error:
        vk.interpret.saliency(never_built, IMAGES)
    assert error.value.argument == "model"

    first, second = keras.Input((12, 12, 3)), keras.Input((12, 12, 3))
    joined = keras.layers.Concatenate()([first, second])
    two_inputs = keras.Model([first, second], keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(joined)))
    with pytest.raises(ArgumentError, match="one image input; .* has 2 inputs"):
        vk.interpret.occlusion(two_inputs, IMAGES)


def test_a_layer_called_twice_is_refused_for_grad_cam():
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    inputs = keras.Input((12, 12, 3))
    x = shared(shared(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    with pytest.raises(ArgumentError, match="'shared' is called at 2 places"):
        vk.interpret.grad_cam(model, IMAGES, layer="shared")


def test_occlusion_stride_above_the_patch_is_refused_not_nan():
    model = keras.Sequential([keras.Input((12, 12, 3)), *_layers()])
    with pytest.raises(ArgumentError, match=r"stride to be an integer in \[1, 2\]; "
                                            r"received stride=5") as error:
        vk.interpret.occlusion(model, IMAGES, patch_size=2, stride=5)
    assert error.value.argument == "stride"
    for bad in ({"patch_size": 0}, {"patch_size": 2.5}, {"baseline": float("nan")},
                {"baseline": "black"}, {"target": [0, 1, 2]}):
        with pytest.raises(ArgumentError, match=next(iter(bad))):
            vk.interpret.occlusion(model, IMAGES, **bad)


def test_sizes_too_small_for_the_layer_name_the_argument_and_the_smallest_size():
    model = keras.Sequential([keras.Input((None, None, 3)), *_layers()[:3]])
    adapter = ModelAdapter(model, require_output=False)
    # same-padded conv keeps s, pooling floors s/2, a valid 3x3 conv takes 2: s/2 - 2 >= 1
    assert adapter.smallest_side(["valid_conv"]) == 6
    image = np.full((24, 24, 3), 100.0)
    with pytest.raises(ArgumentError, match="tile_size to keep every image at least 6x6"):
        vk.interpret.deep_dream(model, image, layers="valid_conv", octaves=1, tile_size=5)
    deeper = keras.Sequential([keras.Input((None, None, 3)), *_layers()[:3],
                               keras.layers.MaxPooling2D(2),
                               keras.layers.Conv2D(2, 3, name="deepest")])
    # (s/2 - 2)/2 - 2 >= 1: s >= 16; three octaves of 24 at scale 2 start at 8 (6, raised
    # to the 8-pixel floor)
    with pytest.raises(ArgumentError, match="octaves to keep every image at least 16x16"):
        vk.interpret.deep_dream(deeper, image, layers="deepest", octaves=3, octave_scale=2.0)
    with pytest.raises(ArgumentError, match="image_size=\\(height, width\\)"):
        vk.interpret.filters(model, "valid_conv", [0], steps=1)
    with pytest.raises(ArgumentError, match="image_size to keep every image at least 6x6"):
        vk.interpret.filters(model, "valid_conv", [0], steps=1, image_size=(5, 5))
    assert vk.interpret.deep_dream(model, image, layers="valid_conv", octaves=1, steps=1,
                                   tile_size=6, verbose=0).shape == (24, 24, 3)


def test_images_of_the_wrong_size_dtype_or_values_name_the_images():
    model = keras.Sequential([keras.Input((12, 12, 3)), *_layers()])
    cases = {"12x12 pixels": np.zeros((1, 10, 12, 3)), "real numbers": np.full((1, 12, 12, 3),
                                                                                "a"),
             "finite pixel values": np.full((1, 12, 12, 3), np.nan),
             "at least one image": np.zeros((0, 12, 12, 3))}
    for message, images in cases.items():
        with pytest.raises(ArgumentError, match=message) as error:
            vk.interpret.saliency(model, images)
        assert error.value.argument == "images"


def test_multi_label_explanations_per_class_use_each_class_sigmoid():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    head = keras.layers.Dense(4, activation="sigmoid", name="labels")
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(conv(inputs))))
    assert ModelAdapter(model).head.kind == "multilabel"
    maps = vk.interpret.occlusion(model, IMAGES, target=np.array([2, 3]), patch_size=12,
                                  stride=12, baseline=0.0)
    probabilities = np.asarray(model(IMAGES))
    hidden = np.asarray(model(np.zeros_like(IMAGES)))
    expected = probabilities[[0, 1], [2, 3]] - hidden[[0, 1], [2, 3]]
    np.testing.assert_allclose(maps[:, 0, 0], expected, rtol=1e-5, atol=1e-7)


def test_a_uint8_input_model_is_explained_by_layers_and_refused_input_gradients():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((12, 12, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    pixels = IMAGES.astype("uint8")
    float_input = keras.Input((12, 12, 3))
    twin_layers = model.layers[1:]  # the same layers behind a float32 input
    x = float_input
    for layer in twin_layers:
        x = layer(x)
    twin = keras.Model(float_input, x)
    np.testing.assert_allclose(vk.interpret.grad_cam(model, pixels, target=1, layer="conv"),
                               vk.interpret.grad_cam(twin, pixels, target=1, layer="conv"),
                               atol=1e-5)
    for method in (vk.interpret.saliency, vk.interpret.integrated_gradients,
                   vk.interpret.fgsm):
        with pytest.raises(ArgumentError, match="takes uint8 inputs") as error:
            method(model, pixels)
        assert error.value.argument == "model"


def test_one_linear_unit_is_one_score_unless_declared_a_binary_logit():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((12, 12, 3)), *_layers()[:4], keras.layers.Dense(1)])
    head = ModelAdapter(model).head
    assert (head.kind, head.num_classes) == ("logits", 1)
    with pytest.raises(ArgumentError, match=r"class ids in \[0, 0\].*target=1"):
        vk.interpret.occlusion(model, IMAGES, target=1)
    score = vk.interpret.occlusion(model, IMAGES, target=0, patch_size=12, stride=12,
                                   verbose=0)
    declared = vk.interpret.ClassScore(0, binary=True, from_logits=True)  # class 0 is -z
    negative = vk.interpret.occlusion(model, IMAGES, target=declared, patch_size=12,
                                      stride=12, verbose=0)
    np.testing.assert_allclose(negative, -score, rtol=1e-6, atol=1e-6)
    z = np.asarray(model(IMAGES))[:, 0] - np.asarray(model(np.broadcast_to(
        IMAGES.mean(axis=(1, 2), keepdims=True), IMAGES.shape)))[:, 0]
    np.testing.assert_allclose(score[:, 0, 0], z, rtol=1e-5, atol=1e-6)
