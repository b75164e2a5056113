"""visionkit.testing: its checks fail on broken models, its writers write what they say."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageOps

import visionkit as vk
from visionkit import testing

SHAPE = (8, 12, 3)


def _dense_builder(input_shape, num_classes, activation="softmax"):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", name="stem")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation=activation, name="predictions")(x)
    return keras.Model(inputs, outputs)


@keras.saving.register_keras_serializable("visionkit_tests")
class _ForgetfulScale(keras.layers.Layer):
    """Multiplies by `factor`, but its config leaves `factor` out (reloads as 1)."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        config = super().get_config()
        config.pop("factor", None)  # Keras records constructor arguments by itself
        return config


def test_the_module_does_not_import_pytest():
    tree = ast.parse(Path(testing.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in getattr(node, "names", [])}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "pytest" not in imported


def test_random_images_are_raw_uint8_and_seeded():
    images = testing.random_images((5, 7, 3), batch=4, seed=3)
    assert images.shape == (4, 5, 7, 3) and images.dtype == np.uint8
    assert np.array_equal(images, testing.random_images((5, 7, 3), batch=4, seed=3))
    assert not np.array_equal(images, testing.random_images((5, 7, 3), batch=4, seed=4))
    assert images.min() < 16 and images.max() > 239  # the whole 0..255 range is drawn


def test_a_builder_passes_and_returns_the_trained_model():
    model = testing.run_model_test(_dense_builder, SHAPE, 4)
    assert model.output_shape == (None, 4) and model.optimizer is not None


def test_logits_are_checked_against_the_expectation():
    testing.run_model_test(_dense_builder, SHAPE, 3, init_kwargs={"activation": None},
                           ends_in_probabilities=False, run_saving_check=False)
    with pytest.raises(AssertionError, match="ends_in_probabilities"):
        testing.run_model_test(_dense_builder, SHAPE, 3, init_kwargs={"activation": None},
                               run_training_check=False, run_saving_check=False)



def test_a_sigmoid_single_label_classifier_fails_naming_its_activation():
    # The message used to say "(softmax)" of a model ending in sigmoid.
    with pytest.raises(AssertionError, match=r"outputs do not sum to 1 over the classes "
                                             r"\(output activation 'sigmoid'\).*multilabel"):
        testing.run_model_test(_dense_builder, SHAPE, 3, init_kwargs={"activation": "sigmoid"},
                               run_training_check=False, run_saving_check=False)


def test_a_multilabel_model_ending_in_softmax_fails_and_sigmoid_passes():
    with pytest.raises(AssertionError, match=r"multilabel model ends in softmax"):
        testing.run_model_test(_dense_builder, SHAPE, 3, task="multilabel",
                               run_training_check=False, run_saving_check=False)
    testing.run_model_test(_dense_builder, SHAPE, 3, task="multilabel",
                           init_kwargs={"activation": "sigmoid"}, run_saving_check=False)

def test_a_wrong_output_shape_fails():
    with pytest.raises(AssertionError, match=r"expected output shape \(2, 5\), received \(2, 3\)"):
        testing.run_model_test(_dense_builder, SHAPE, 3, expected_output_shape=(2, 5),
                               run_training_check=False, run_saving_check=False)



@pytest.mark.parametrize("wrap", [lambda t: {"probabilities": t}, lambda t: [t, t]])
def test_a_model_with_several_or_named_outputs_is_refused_by_name(wrap):
    # A dict output used to be read as a 0-d array: "expected output shape (2, 3),
    # received ()".
    def named(input_shape, num_classes):
        model = _dense_builder(input_shape, num_classes)
        return keras.Model(model.input, wrap(model.output))

    with pytest.raises(ValueError, match=r"named: run_model_test checks a model with one "
                                         r"tensor output; received a (dict|list)"):
        testing.run_model_test(named, SHAPE, 3, run_saving_check=False)


class _PerPixel(keras.Model):
    """A subclassed model: its output shape is unknown until it is called."""

    def __init__(self, num_classes):
        super().__init__()
        self.scale = keras.layers.Rescaling(1 / 255.0)
        self.head = keras.layers.Conv2D(num_classes, 1, activation="softmax")

    def call(self, images):
        return self.head(self.scale(images))


def test_a_subclassed_builder_is_called_before_its_task_is_inferred():
    model = testing.run_model_test(lambda shape, classes: _PerPixel(classes), SHAPE, 3,
                                   run_saving_check=False)
    assert tuple(model(testing.random_images(SHAPE)).shape) == (2, 8, 12, 3)

def test_a_frozen_stem_fails_the_training_check():
    def frozen_stem(input_shape, num_classes):
        inputs = keras.Input(input_shape)
        # No gradient reaches the first weight: its output is multiplied by zero.
        stem = keras.layers.Dense(2, name="stem")(keras.layers.Flatten()(inputs))
        head = keras.layers.Dense(num_classes, activation="softmax", name="predictions")
        return keras.Model(inputs, head(keras.layers.Lambda(lambda t: t * 0.0)(stem)))

    with pytest.raises(AssertionError, match="first trainable weight"):
        testing.run_model_test(frozen_stem, SHAPE, 3, run_saving_check=False)


def test_a_layer_that_does_not_save_its_options_fails_the_round_trip():
    def forgetful(input_shape, num_classes):
        model = _dense_builder(input_shape, num_classes, activation=None)
        outputs = keras.layers.Softmax()(_ForgetfulScale(3.0)(model.output))
        return keras.Model(model.input, outputs)

    with pytest.raises(AssertionError, match="reloaded from .keras"):
        testing.run_model_test(forgetful, SHAPE, 3, run_training_check=False)


def test_segmentation_targets_ignore_the_top_rows_and_cover_the_classes():
    outputs = np.zeros((2, 16, 8, 3), np.float32)
    masks = testing._targets(vk.tasks.get_task("segmentation"), outputs, 3, seed=0)
    assert masks.shape == (2, 16, 8)
    assert (masks[:, :2] == vk.vocabulary.IGNORE_INDEX).all()
    assert set(np.unique(masks[:, 2:])) == {0, 1, 2}


def test_tiny_options_are_options_of_every_builder():
    for name in vk.models.available("classification") + vk.models.available("segmentation"):
        parameters = inspect.signature(vk.models.get(name).builder).parameters
        options = testing.tiny_model_kwargs(name)
        assert "kwargs" in parameters or set(options) <= set(parameters), (name, options)
        assert len(testing.tiny_input_shape(name)) == 3


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_save_image_stores_the_exif_orientation_a_viewer_applies(tmp_path, orientation):
    stored = testing.noise(8, 12, block=4)
    path = testing.save_image(tmp_path / "sub" / "photo.png", stored, orientation=orientation)
    with Image.open(path) as image:
        assert image.getexif()[0x0112] == orientation
        assert np.array_equal(np.asarray(image), stored)  # pixels stored as given
        shown = np.asarray(ImageOps.exif_transpose(image))
    turned = {3: np.rot90(stored, 2), 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}
    assert np.array_equal(shown, turned[orientation])
    with pytest.raises(ValueError, match="orientation must be .* received 9"):
        testing.save_image(tmp_path / "bad.png", stored, orientation=9)


def test_write_images_writes_each_size(tmp_path):
    paths = testing.write_images(tmp_path / "a", {"x.png": (5, 7), "y.jpg": (6, 4)}, seed=1)
    assert [path.name for path in paths] == ["x.png", "y.jpg"]
    with Image.open(paths[0]) as first, Image.open(paths[1]) as second:
        assert (first.size, second.size) == ((7, 5), (4, 6))
        drawn = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
        assert np.array_equal(np.asarray(first), drawn)  # PNG keeps the drawn pixels



@pytest.mark.parametrize("pixels", [np.full((4, 5, 3), 0.5), np.full((4, 5), 0.5, np.float32),
                                    np.full((4, 5, 3), 300, np.int64),
                                    np.zeros((2, 4, 5, 3), np.uint8)])
def test_save_image_refuses_pixels_that_are_not_uint8_naming_them(tmp_path, pixels):
    # Floats in 0..1 failed inside PIL ("Cannot handle this data type", "cannot write
    # mode F as PNG") without saying what was expected.
    with pytest.raises(ValueError, match=rf"save_image writes uint8 pixels 0\.\.255.*received "
                                         rf"{pixels.dtype} of shape {re.escape(str(pixels.shape))}"):
        testing.save_image(tmp_path / "a.png", pixels)
    assert not (tmp_path / "a.png").exists()
    grey16 = np.array([[0, 40000]], np.uint16)  # a 16-bit grey image is written as is
    assert np.asarray(Image.open(testing.save_image(tmp_path / "g.png", grey16))).tolist() \
        == [[0, 40000]]

def test_write_mask_is_lossless_and_refuses_bad_masks(tmp_path):
    mask = np.array([[0, 1, 2], [255, 7, 0]], np.int64)
    with Image.open(testing.write_mask(tmp_path / "m.png", mask)) as image:
        assert image.mode == "L" and np.array_equal(np.asarray(image), mask)
    with pytest.raises(ValueError, match="lossless format .* received 'm.jpg'"):
        testing.write_mask(tmp_path / "m.jpg", mask)
    with pytest.raises(ValueError, match="0..255; received 0..256"):
        testing.write_mask(tmp_path / "m.png", np.array([[0, 256]]))
    with pytest.raises(ValueError, match=r"\[H, W\]; received float64 of shape \(2, 2\)"):
        testing.write_mask(tmp_path / "m.png", np.zeros((2, 2)))


def test_truncated_jpeg_is_half_a_jpeg(tmp_path):
    path = testing.truncated_jpeg(tmp_path / "t.jpg")
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8" and not data.endswith(b"\xff\xd9")
    assert testing.write_bytes(tmp_path / "n" / "t.txt", "é").read_bytes() == "é".encode()
