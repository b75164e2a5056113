"""Models written the way other tools write them: each exports with parity or is refused."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.export import parity

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the export extra) is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime (the export extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the export extra) is not installed")

L = keras.layers
NAMES = ["a", "b", "c"]


def _head(inputs, x, activation="softmax"):
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, name="conv")(x))
    return keras.Model(inputs, L.Dense(3, activation=activation, name="out")(x))


def _model(kind: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    shape = (48, 64, 3) if kind == "non_square" else (16, 16, 3)
    inputs = keras.Input(shape)
    if kind == "rescaling":
        return _head(inputs, L.Rescaling(1 / 255.0)(inputs))
    if kind == "lambda":
        return _head(inputs, L.Lambda(lambda t: t / 127.5 - 1.0)(inputs))
    if kind == "batch_norm":
        x = L.BatchNormalization()(L.Conv2D(4, 3)(L.Rescaling(1 / 255.0)(inputs)))
        return _head(inputs, L.ReLU()(x))
    if kind == "logits":
        return _head(inputs, L.Rescaling(1 / 255.0)(inputs), activation=None)
    if kind == "lambda_softmax":  # the softmax hidden in a Lambda: not to be applied twice
        model = _head(inputs, L.Rescaling(1 / 255.0)(inputs), activation=None)
        return keras.Model(inputs, L.Lambda(lambda t: keras.ops.softmax(4.0 * t))(
            model.output))
    if kind == "sigmoid":  # raw pixels saturate the sigmoid: several classes at exactly 1.0
        return _head(inputs, inputs, activation="sigmoid")
    if kind == "nested_backbone":
        inputs = keras.Input((32, 32, 3))
        backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                                  weights=None, alpha=0.35)
        x = L.GlobalAveragePooling2D()(backbone(L.Rescaling(1 / 127.5, -1.0)(inputs)))
        return keras.Model(inputs, L.Dense(3, activation="softmax")(x))
    return _head(inputs, L.Rescaling(1 / 255.0)(inputs))


@pytest.mark.parametrize("kind,export", [
    ("rescaling", "litert"), ("lambda", "onnx"), ("batch_norm", "litert"),
    ("logits", "onnx"), ("sigmoid", "onnx"), ("non_square", "litert"),
    ("lambda_softmax", "saved_model"),
    pytest.param("nested_backbone", "onnx", marks=pytest.mark.slow)])
def test_user_written_models_export_with_parity(tmp_path, kind, export):
    model = _model(kind)
    path = getattr(vk.export, export)(model, tmp_path / kind, task="classification",
                                      class_names=NAMES)
    height, width = model.input_shape[1:3]
    images = np.random.default_rng(1).integers(0, 256, (8, height, width, 3), np.uint8)
    report = vk.export.check(path, model=model, images=images)
    assert report["passed"], report["failures"]
    served = vk.export.load(path)(images)
    expected = model.predict(images.astype(np.float32), verbose=0)
    if kind == "logits":  # the export serves softmax probabilities of the logits
        expected = keras.ops.convert_to_numpy(keras.ops.softmax(expected))
    assert np.max(np.abs(served["probabilities"] - expected)) <= 1e-4


def test_tied_classes_count_as_agreement_only_when_exact():
    reference = {"probabilities": np.array([[1.0, 1.0, 0.2], [0.5, 0.49, 0.01]]),
                 "class_id": np.array([0, 0])}
    served = {"probabilities": reference["probabilities"], "class_id": np.array([1, 1])}
    # Image 0: classes 0 and 1 tie exactly (saturated sigmoid); image 1: a near tie.
    assert parity.measure("classification", reference, served)["top1_agreement"] == 0.5


def test_greyscale_model_is_refused_naming_its_shape(tmp_path):
    inputs = keras.Input((16, 16, 1))
    model = _head(inputs, inputs)
    with pytest.raises(ValueError, match=r"3 channels.*\(None, 16, 16, 1\)"):
        vk.export.litert(model, tmp_path / "grey", task="classification", class_names=NAMES)
    assert not os.listdir(tmp_path / "grey") if (tmp_path / "grey").exists() else True


def test_litert_into_a_saved_model_root_is_refused(tmp_path):
    model = _model("rescaling")
    root = tmp_path / "served"
    (root / "1").mkdir(parents=True)  # what vk.export.saved_model or TF Serving leaves
    (root / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match=r"already holds a saved_model export \(version 1\)"
                                         r".*served/litert"):
        vk.export.litert(model, root, task="classification", class_names=NAMES)
    assert sorted(os.listdir(root)) == ["1"]
    path = vk.export.litert(model, vk.export.formats.format_root(root, "litert"),
                            task="classification", class_names=NAMES)
    assert path == os.path.join(root, "litert", "1")


def test_check_on_a_folder_that_is_not_an_export_names_it(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(FileNotFoundError, match="photos"):
        vk.export.check(folder, model=_model("rescaling"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        vk.export.check(tmp_path / "nowhere", model=_model("rescaling"))


def test_check_export_command_on_a_folder_that_is_not_an_export(tmp_path, capsys):
    from visionkit.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    assert main(["check-export", str(folder)]) == 2
    error = capsys.readouterr().err
    assert "check-export: error" in error and str(folder) in error
