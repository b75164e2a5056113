"""Assets of an export and the checks on what is exported."""

from __future__ import annotations

import datetime
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, IMAGE_SIZE

import visionkit as vk


def test_labels_txt_has_one_class_name_per_line(exported):
    with open(os.path.join(exported, "assets", "labels.txt"), encoding="utf-8") as file:
        assert file.read() == "cat\ndog\nbird\n"


def test_visionkit_json_describes_the_export(exported):
    with open(os.path.join(exported, "assets", "visionkit.json"), encoding="utf-8") as file:
        metadata = json.load(file)
    assert metadata["format"] == "visionkit.saved_model"
    assert metadata["task"] == "classification"
    assert metadata["input_size"] == [16, 24, 3]  # [height, width, channels]
    assert metadata["class_names"] == list(CLASS_NAMES)
    assert metadata["num_classes"] == 3
    assert metadata["version"] == 1
    assert metadata["signatures"] == ["serving_default", "serve_bytes", "preprocess_bytes"]
    assert metadata["metrics"] == {"accuracy": 0.75, "num_examples": 10}
    assert metadata["versions"]["visionkit"] == vk.__version__
    assert metadata["versions"]["tensorflow"] == tf.__version__
    assert metadata["versions"]["keras"] == keras.__version__
    created = datetime.datetime.fromisoformat(metadata["created"])
    age = datetime.datetime.now(datetime.timezone.utc) - created
    assert datetime.timedelta(0) <= age < datetime.timedelta(hours=1)
    assert metadata["data"]["image_size"] == [16, 24]


def test_assets_are_tracked_by_the_saved_model(exported):
    loaded = tf.saved_model.load(exported)
    paths = sorted(os.path.basename(asset.asset_path.numpy().decode()) for asset in loaded.assets)
    assert paths == ["labels.txt", "visionkit.json"]


def _export(model, root, **kwargs):
    return vk.export.saved_model(model, root, **kwargs)


def test_class_names_must_match_the_model_outputs(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="3 outputs per image .* 2 class names"):
        _export(tiny_model, tmp_path, task="classification", class_names=["cat", "dog"])
    assert os.listdir(tmp_path) == []


def test_a_single_sigmoid_unit_with_two_names_says_how_to_export_it(tmp_path):
    inputs = keras.Input((8, 8, 3))
    binary = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match=r"1 outputs per image .* 2 class names.*"
                                         r"task='multilabel' and class_names=\[the name of "
                                         r"class 1\]"):
        _export(binary, tmp_path, task="classification", class_names=["cat", "dog"])


def test_missing_information_is_named(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="Cannot tell the task"):
        _export(tiny_model, tmp_path, class_names=CLASS_NAMES)
    with pytest.raises(ValueError, match="Cannot tell the class names"):
        _export(tiny_model, tmp_path, task="classification")
    with pytest.raises(ValueError, match="Unknown task 'clasification'.*'classification'"):
        _export(tiny_model, tmp_path, task="clasification", class_names=CLASS_NAMES)
    with pytest.raises(ValueError, match="distinct class names"):
        _export(tiny_model, tmp_path, task="classification", class_names=["a", "b", "a"])
    assert os.listdir(tmp_path) == []


def test_arguments_must_agree_with_data(tmp_path, tiny_model, tiny_data):
    with pytest.raises(ValueError, match="contradicts the data's class names"):
        _export(tiny_model, tmp_path, data=tiny_data, class_names=["x", "y", "z"])
    # Agreeing arguments are fine.
    path = _export(tiny_model, tmp_path, data=tiny_data, task="classification",
                   class_names=list(CLASS_NAMES), verify=False)
    assert os.path.basename(path) == "1"


def test_data_image_size_must_match_the_model(tmp_path, tiny_data):
    model = vk.models.build("simple_cnn", input_shape=(24, 16, 3), num_classes=3, filters=(4,))
    with pytest.raises(ValueError, match=r"size \(24, 16\) .* yields \(16, 24\)"):
        _export(model, tmp_path, data=tiny_data)


def test_model_must_take_rgb_images_of_known_size(tmp_path):
    gray = vk.models.build("simple_cnn", input_shape=(*IMAGE_SIZE, 1), num_classes=3,
                           filters=(4,))
    with pytest.raises(ValueError, match="3 channels"):
        _export(gray, tmp_path, task="classification", class_names=CLASS_NAMES)
    any_size = vk.models.build("simple_cnn", input_shape=(None, None, 3), num_classes=3,
                               filters=(4,))
    with pytest.raises(ValueError, match="not fixed .* pass data="):
        _export(any_size, tmp_path, task="classification", class_names=CLASS_NAMES)


def test_any_size_model_takes_its_size_from_data(tmp_path, tiny_data):
    model = vk.models.build("simple_cnn", input_shape=(None, None, 3), num_classes=3,
                            filters=(4,))
    predictor = vk.export.load(_export(model, tmp_path, data=tiny_data))
    assert predictor.input_size == (16, 24, 3)
    image = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    # The documented default preprocessing: bilinear with antialiasing.
    expected = model(tf.image.resize(image[None].astype(np.float32), IMAGE_SIZE,
                                     antialias=True))
    np.testing.assert_allclose(predictor(image)["probabilities"], np.asarray(expected)[0],
                               atol=1e-5)


def test_metrics_must_be_json(tmp_path, tiny_model):
    root = tmp_path / "root"
    with pytest.raises(TypeError, match=r"metrics\['model'\]"):
        _export(tiny_model, root, task="classification", class_names=CLASS_NAMES,
                metrics={"model": object()})
    assert not root.exists()
    path = _export(tiny_model, root, task="classification", class_names=CLASS_NAMES,
                   metrics={"per_class": np.array([0.5, 0.25]), "loss": float("nan")},
                   verify=False)
    assert vk.export.read_metadata(path)["metrics"] == {"per_class": [0.5, 0.25], "loss": None}


def test_not_a_keras_model(tmp_path):
    with pytest.raises(TypeError, match="keras.Model"):
        _export(lambda images: images, tmp_path, task="classification", class_names=["a"])
