"""Interpretation on inputs written the way other tools write them (issue 18 follow-up)."""

from __future__ import annotations

import html
import os
import re
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.interpret.error_analysis import error_analysis

NAMES = ["no cat", "cat/dog ünïcödé"]


def _brightness_classifier(logits: bool = False) -> keras.Model:
    """Binary classifier with one output unit: class 1 when the mean pixel is above 128."""
    inputs = keras.Input((8, 10, 1))
    x = keras.layers.Conv2D(1, 1, name="conv", kernel_initializer="ones")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation=None if logits else "sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("head").set_weights([np.full((1, 1), 0.1, "float32"),
                                         np.full((1,), -12.8, "float32")])
    return model


def _data(images, labels, names=NAMES):
    val = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    return types.SimpleNamespace(val=val, train=None, class_names=names,
                                 task=types.SimpleNamespace(name="classification"))


def _binary_set():
    brightness = np.array([40, 200, 60, 220, 30, 90, 250], "float32")
    images = np.broadcast_to(brightness[:, None, None, None], (7, 8, 10, 1)).copy()
    labels = np.array([0, 1, 1, 1, 0, 1, 0])
    return images, labels


@pytest.mark.parametrize("logits", [False, True])
def test_binary_single_unit_classifier_confusion_matrix(tmp_path, logits):
    # A [B, 1] sigmoid (or logit) head is binary: argmax over one column is always 0.
    images, labels = _binary_set()
    model = _brightness_classifier(logits)
    analysis = error_analysis(model, _data(images, labels), tmp_path)
    predicted = (images.mean(axis=(1, 2, 3)) > 128).astype(int)  # independent of the model
    probability = 1 / (1 + np.exp(-(0.1 * images.mean(axis=(1, 2, 3)) - 12.8)))
    assert np.array_equal(predicted, (probability > 0.5).astype(int))
    expected = np.zeros((2, 2), int)
    np.add.at(expected, (labels, predicted), 1)
    assert analysis.matrix.tolist() == expected.tolist()  # [[2, 1], [2, 2]]
    assert expected[1, 0] == 2 and expected[0, 1] == 1


def test_one_hot_labels_give_the_integer_labels_matrix(tmp_path):
    images, labels = _binary_set()
    model = _brightness_classifier()
    integer = error_analysis(model, _data(images, labels), tmp_path / "a")
    one_hot = error_analysis(model, _data(images, np.eye(2, dtype="float32")[labels]),
                             tmp_path / "b")
    assert one_hot.matrix.tolist() == integer.matrix.tolist()


def test_class_names_with_spaces_slashes_unicode_and_an_empty_class(tmp_path):
    images, labels = _binary_set()
    names = NAMES + ["class <three> & \"four\""]  # class 2 has no validation image
    analysis = error_analysis(_brightness_classifier(), _data(images, labels, names),
                              tmp_path)
    assert analysis.matrix.shape == (3, 3) and analysis.matrix[2].sum() == 0
    links = re.findall(r'href="([^"]+)"', analysis.html)
    assert links and all(os.path.isfile(tmp_path / link) for link in links)
    for link in links:
        page = (tmp_path / link).read_text(encoding="utf-8")
        for source in re.findall(r'src="([^"]+)"', page):
            assert os.path.isfile(os.path.join(tmp_path, os.path.dirname(link), source))
    for name in names:
        assert html.escape(name) in analysis.html
    assert "<three>" not in analysis.html


def test_empty_validation_split_names_it(tmp_path):
    data = _data(np.zeros((0, 8, 10, 1), "float32"), np.zeros((0,), "int64"))
    with pytest.raises(ValueError, match="validation split of data holds none"):
        error_analysis(_brightness_classifier(), data, tmp_path)


def _tiny_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 10, 3)), keras.layers.Conv2D(2, 3, name="c1"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax", name="head")])


def test_compare_takes_one_method_and_metric_name_as_a_string():
    from visionkit.interpret import compare, metrics

    model = _tiny_classifier()
    images = np.random.default_rng(1).uniform(0, 255, (2, 8, 10, 3)).astype("float32")
    result = compare(model, images, methods="random", metrics="deletion", steps=2,
                     fill="constant", value=128.0, verbose=0)
    assert [(row["method"], row["metric"]) for row in result.rows] == [("random",
                                                                         "deletion")]
    predicted = np.asarray(model(images)).argmax(-1)
    reference = metrics.deletion(model, images, metrics.random_map(images), target=predicted,
                                 steps=2, fill="constant", value=128.0)
    assert result.rows[0]["value"] == pytest.approx(float(reference.auc.mean()), abs=1e-6)


@pytest.mark.parametrize("arguments, named", [
    ({"methods": ["gradcam"]}, "methods"), ({"metrics": ["deletion_auc"]}, "metrics"),
    ({"sigmaa": 3.0}, "sigmaa")])
def test_compare_unknown_names_fail_before_any_work(arguments, named):
    from visionkit.interpret import compare
    from visionkit.interpret.checks import ArgumentError

    images = np.zeros((1, 8, 10, 3), "float32")
    with pytest.raises(ArgumentError) as error:
        compare(_tiny_classifier(), images, verbose=0, **arguments)
    assert error.value.argument == named
    assert repr(next(iter(arguments.values()))).strip("[]") in str(error.value) or \
        named in str(error.value)


def test_style_transfer_greyscale_pictures_on_a_colour_model_equal_their_rgb_copies():
    from visionkit.interpret.style import style_transfer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
                              keras.layers.Conv2D(4, 3, activation="relu", name="c2")])
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (12, 16)).astype("uint8")  # [H, W] greyscale
    style = rng.integers(0, 256, (10, 9, 1)).astype("uint8")  # other size, one channel
    options = dict(model=model, content_layers="c2", style_layers=["c1", "c2"], steps=2,
                   verbose=0)
    with pytest.warns(UserWarning, match="greyscale") as caught:
        grey = style_transfer(content, style, **options)
    assert {str(w.message).split()[0] for w in caught} == {"content", "style"}
    colour = style_transfer(np.repeat(content[..., None], 3, -1), np.repeat(style, 3, -1),
                            **options)
    assert grey.image.shape == (12, 16, 3)
    np.testing.assert_array_equal(grey.image, colour.image)


def test_a_cam_with_no_evidence_for_the_target_is_said_once():
    # Positive activations and a class whose Dense weights are all negative: HiResCAM's
    # relu(sum_k g_k A_k) is 0 everywhere for it, which used to come back silently.
    from visionkit.interpret.cams import hires_cam

    inputs = keras.Input((6, 8, 1))
    features = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv",
                                   kernel_initializer="ones")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    weights = np.array([[1.0, -1.0], [0.5, -2.0]], "float32")
    model.get_layer("head").set_weights([weights, np.zeros(2, "float32")])
    images = np.random.default_rng(0).uniform(1, 255, (2, 6, 8, 1)).astype("float32")
    activations = np.asarray(keras.Model(inputs, features)(images))  # [2, 6, 8, 2]
    # d logit_c / d A_k at every position = W[k, c] / (h * w) (global average pooling).
    reference = np.maximum(activations @ weights / 48.0, 0.0)  # [2, 6, 8, 2]
    np.testing.assert_allclose(hires_cam(model, images, target=0, normalize=False),
                               reference[..., 0], rtol=1e-5, atol=1e-5)
    with pytest.warns(UserWarning, match=r"hires_cam: 2 of 2 maps are constant"):
        empty = hires_cam(model, images, target=[1, 1])
    assert np.all(empty == 0) and np.all(reference[..., 1] == 0)


@pytest.mark.parametrize("name", ["filters_conv #1.png", "filters_a?b 100%.png",
                                  "filters_ünï cödé.png"])
def test_report_picture_links_resolve_to_files_whatever_the_layer_name(tmp_path, name):
    # Resolved the way a browser resolves a relative link against the page's file URL.
    from urllib.parse import urljoin, urlparse
    from urllib.request import url2pathname

    from visionkit.interpret.report import image_source

    (tmp_path / name).write_bytes(b"png")
    page = (tmp_path / "index.html").as_uri()
    resolved = urlparse(urljoin(page, html.unescape(image_source(name))))
    assert os.path.isfile(url2pathname(resolved.path)) and not resolved.fragment
