"""Backbones: P-levels on a non-square input, errors, local weights files."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.models.backbones import available_backbones, build_backbone
from visionkit.testing import random_images

# Non-square, and not the same multiple of 32 on both sides.
HEIGHT, WIDTH = 64, 96
SHAPE = (HEIGHT, WIDTH, 3)


def tiny_options(name: str) -> dict:
    if name.startswith("mobilenet"):
        return {"width_multiplier": 0.35}
    if name.startswith(("vgg", "resnet", "preact_resnet", "googlenet")) and name != "resnet50_v2":
        return {"width_multiplier": 0.125}
    if name == "densenet_bc":
        return {"blocks": (1, 2, 2, 1), "growth_rate": 4}
    return {}


def test_available_backbones_lists_own_and_application_families():
    names = available_backbones()
    assert names == sorted(names)
    assert {"vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "mobilenet_v2",
            "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1",
            "densenet121", "resnet50_v2"} <= set(names)
    assert vk.models.available_backbones() == names


@pytest.mark.parametrize("name", available_backbones())
def test_backbone_levels_have_the_right_sizes(name):
    backbone = build_backbone(name, SHAPE, **tiny_options(name))
    assert backbone.name == f"{name}_backbone"
    assert sorted(backbone.output) == ["P1", "P2", "P3", "P4", "P5"]
    features = backbone(random_images(SHAPE), training=False)
    for level in range(1, 6):
        feature = np.asarray(features[f"P{level}"])
        assert feature.shape[:3] == (2, HEIGHT // 2**level, WIDTH // 2**level), level
        assert np.isfinite(feature).all()


def test_unknown_backbone_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet51'.*'resnet50'"):
        build_backbone("resnet51", SHAPE)


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_imagenet_weights_are_refused_for_own_families(name):
    with pytest.raises(ValueError, match=r"trained from scratch.*densenet121"):
        build_backbone(name, SHAPE, weights="imagenet")


def test_missing_or_misnamed_weights_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no file exists"):
        build_backbone("resnet18", SHAPE, weights=tmp_path / "absent.weights.h5")
    wrong = tmp_path / "weights.bin"
    wrong.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        build_backbone("resnet18", SHAPE, weights=wrong)
    legacy = tmp_path / "weights.h5"
    legacy.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):  # own families: Keras 3 files only
        build_backbone("resnet18", SHAPE, weights=legacy)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_local_weights_file_round_trip(name, tmp_path):
    keras.utils.set_random_seed(0)
    options = tiny_options(name)
    original = build_backbone(name, SHAPE, **options)
    path = tmp_path / f"{name}.weights.h5"
    original.save_weights(path)
    keras.utils.set_random_seed(1)
    fresh = build_backbone(name, SHAPE, **options)
    loaded = build_backbone(name, SHAPE, weights=path, **options)
    images = random_images(SHAPE)
    expected = np.asarray(original(images)["P5"])
    np.testing.assert_array_equal(np.asarray(loaded(images)["P5"]), expected)
    assert not np.allclose(np.asarray(fresh(images)["P5"]), expected)


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_for_other_arguments_fail_clearly(tmp_path):
    path = tmp_path / "narrow.weights.h5"
    build_backbone("resnet18", SHAPE, width_multiplier=0.125).save_weights(path)
    with pytest.raises(ValueError, match="does not fit"):
        build_backbone("resnet18", SHAPE, width_multiplier=0.25, weights=path)


def test_legacy_keras_applications_file_loads_and_preprocesses_like_keras(tmp_path):
    """A no-top `.h5` file as Keras publishes them, made here from a random model."""
    keras.utils.set_random_seed(0)
    reference = keras.applications.MobileNetV2(input_shape=SHAPE, alpha=0.35,
                                               include_top=False, weights=None)
    path = tmp_path / "mobilenet_v2_no_top.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that .h5 is a legacy format
        reference.save(path)
    backbone = build_backbone("mobilenet_v2", SHAPE, weights=path, width_multiplier=0.35)
    images = random_images(SHAPE)
    # keras.applications.mobilenet_v2.preprocess_input: "tf" mode, 0..255 -> -1..1.
    expected = reference(images.astype("float32") / 127.5 - 1.0)
    np.testing.assert_allclose(np.asarray(backbone(images)["P5"]), np.asarray(expected),
                               atol=1e-4)


def test_densenet_normalizes_like_keras_preprocess_input():
    backbone = build_backbone("densenet121", (32, 32, 3))
    images = random_images((32, 32, 3)).astype("float32")
    expected = keras.applications.densenet.preprocess_input(images.copy())
    np.testing.assert_allclose(np.asarray(backbone.get_layer("preprocess")(images)),
                               expected, atol=1e-4)


@pytest.mark.parametrize(("name", "shape", "message"), [
    ("resnet18", (16, 96, 3), "at least 32x32"),
    ("efficientnet_b0", (64, 24, 3), "at least 32x32"),
    ("mobilenet_v2", (64, 96, 1), "3 channels"),
    ("vgg16", (64, 96), "height, width, channels"),
])
def test_bad_input_shapes_are_refused(name, shape, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(name, shape)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match=r"does not take option\(s\) batch_norm.*width_multiplier"):
        build_backbone("resnet18", SHAPE, batch_norm=True)
    with pytest.raises(ValueError, match="accepts: none"):
        build_backbone("densenet121", SHAPE, width_multiplier=0.5)
    with pytest.raises(ValueError, match="width_multiplier=-1"):
        build_backbone("vgg11", SHAPE, width_multiplier=-1)


def test_any_input_size_when_left_open():
    backbone = build_backbone("resnet18", (None, None, 3), width_multiplier=0.125)
    features = backbone(random_images((64, 128, 3), batch=1))
    assert tuple(features["P5"].shape[1:3]) == (2, 4)


def test_backbone_round_trips_through_keras_file(tmp_path):
    backbone = build_backbone("mobilenet_v3_large", SHAPE, width_multiplier=0.35)
    backbone.save(tmp_path / "backbone.keras")
    restored = keras.saving.load_model(tmp_path / "backbone.keras")
    images = random_images(SHAPE)
    for level in ("P1", "P5"):
        np.testing.assert_allclose(np.asarray(restored(images)[level]),
                                   np.asarray(backbone(images)[level]), atol=1e-5)
