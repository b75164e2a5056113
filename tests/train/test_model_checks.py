"""Model and data are checked against each other before the first training step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.checks import check_model_against_data


def _classifier(input_shape=(16, 16, 3), units=10, activation="softmax", softmax_layer=False):
    layers = [keras.Input(input_shape), keras.layers.Conv2D(4, 3),
              keras.layers.GlobalAveragePooling2D(),
              keras.layers.Dense(units, activation=None if softmax_layer else activation)]
    if softmax_layer:
        layers.append(keras.layers.Softmax())
    return keras.Sequential(layers)


@pytest.fixture(scope="module")
def shapes_segmentation():
    return vk.data.shapes("segmentation", n=8, image_size=(24, 32), seed=0, batch_size=4)


@pytest.mark.parametrize("model, message", [
    (lambda: _classifier(units=3), "3 output units but the data has 10 classes"),
    (lambda: _classifier(units=1), "softmax over 1 unit"),
    (lambda: _classifier(units=1, softmax_layer=True), "softmax over 1 unit"),
    (lambda: _classifier(input_shape=(32, 32, 3)), "input height is 32 but the data's images "
                                                   "have height 16"),
    (lambda: _classifier(input_shape=(16, 24, 3)), "input width is 24"),
    (lambda: _classifier(input_shape=(16, 16, 1)), "input channels is 1"),
    (lambda: keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(10, 1)]),
     r"must output \[batch, classes\]"),
])
def test_a_classifier_that_cannot_fit_the_data_is_refused(model, message, tiny_digits):
    with pytest.raises(ValueError, match=message):
        check_model_against_data(model(), tiny_digits)


def test_fit_refuses_before_the_first_step(tiny_digits):
    with pytest.raises(ValueError, match="num_classes=10"):
        vk.train.fit(_classifier(units=4), tiny_digits, epochs=1, verbose=0)


def test_models_that_fit_pass(tiny_digits, shapes_segmentation):
    check_model_against_data(_classifier(), tiny_digits)
    check_model_against_data(_classifier(input_shape=(None, None, 3)), tiny_digits)
    check_model_against_data(_classifier(activation=None), tiny_digits)  # logits
    segmenter = vk.models.build("unet", shapes_segmentation.input_shape,
                                shapes_segmentation.num_classes, filters=4, depth=2)
    check_model_against_data(segmenter, shapes_segmentation)


def test_a_segmenter_of_the_wrong_output_size_or_classes_is_refused(shapes_segmentation):
    classes = shapes_segmentation.num_classes
    inputs = keras.Input((24, 32, 3))
    half = keras.Model(inputs, keras.layers.Conv2D(classes, 3, strides=2, padding="same",
                                                    activation="softmax")(inputs))
    with pytest.raises(ValueError, match="output height is 12 but the masks' height is 24"):
        check_model_against_data(half, shapes_segmentation)
    wrong = keras.Model(inputs, keras.layers.Conv2D(classes + 2, 1)(inputs))
    with pytest.raises(ValueError, match=f"{classes + 2} output units"):
        check_model_against_data(wrong, shapes_segmentation)


def test_two_inputs_or_a_binary_sigmoid_are_refused_with_what_to_change(tiny_digits):
    first, second = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    joined = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Add()([first, second])))
    with pytest.raises(ValueError, match="one input"):
        check_model_against_data(keras.Model([first, second], joined), tiny_digits)
    pairs = vk.data.from_arrays(np.zeros((8, 16, 16, 3), "float32"), np.array([0, 1] * 4),
                                class_names=["cat", "dog"], validation_split=0.5)
    with pytest.raises(ValueError, match="single sigmoid unit"):
        check_model_against_data(_classifier(units=1, activation="sigmoid"), pairs)


@pytest.mark.parametrize("masks", [np.zeros((4, 8, 8), int),
                                   np.where(np.eye(8, dtype=bool), 255, 0)[None].repeat(4, 0)],
                         ids=["background only", "background and ignored"])
def test_masks_of_one_class_are_refused_naming_class_names(masks):
    # Masks that show only the background give a one-class data set; the model built
    # for it would end in a softmax over one unit.
    data = vk.data.from_arrays(np.zeros((4, 8, 8, 3), "uint8"), masks=masks,
                               task="segmentation", batch_size=2, validation_split=0.0)
    assert data.num_classes == 1
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="softmax")(inputs))
    with pytest.raises(ValueError, match=r"The data has 1 class \(\['0'\]\).*at least 2.*"
                                         r"pass class_names"):
        check_model_against_data(model, data)
