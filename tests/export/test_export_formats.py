"""LiteRT and ONNX exports: layout, parity with Keras in their own runtimes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, IMAGE_SIZE

import visionkit as vk
from visionkit.export import formats, parity
from visionkit.export.verify import ExportVerificationError, reference_outputs
from visionkit.tasks import get_task

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the export extra) is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime (the export extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the export extra) is not installed")

EXPORTERS = {"litert": vk.export.litert, "onnx": vk.export.onnx}
MODEL_FILES = {"litert": "model.tflite", "onnx": "model.onnx"}


@pytest.fixture(scope="module")
def portable_exports(tmp_path_factory, tiny_model, tiny_data):
    root = tmp_path_factory.mktemp("portable")
    return {name: export(tiny_model, root / name, data=tiny_data)
            for name, export in EXPORTERS.items()}


@pytest.mark.parametrize("export_format", ["litert", "onnx"])
def test_classifier_export_layout_and_parity(portable_exports, tiny_model, val_images,
                                             export_format):
    path = portable_exports[export_format]
    assert os.path.basename(path) == "1"
    assert sorted(os.listdir(path)) == ["labels.txt", MODEL_FILES[export_format],
                                        "visionkit.json"]
    with open(os.path.join(path, "labels.txt")) as file:
        assert file.read().splitlines() == list(CLASS_NAMES)
    metadata = json.load(open(os.path.join(path, "visionkit.json")))
    assert metadata["format"] == f"visionkit.{export_format}"
    assert metadata["input"] == {"name": "images", "dtype": "uint8",
                                 "shape": [None, *IMAGE_SIZE, 3]}
    assert metadata["parity"]["max_abs_probabilities"] <= 1e-4
    assert metadata["preprocessing"]["image_size"] == list(IMAGE_SIZE)

    predictor = vk.export.load(os.path.dirname(path))  # the root: its highest version
    assert predictor.format == export_format and predictor.class_names == list(CLASS_NAMES)
    served = predictor(val_images)
    expected = reference_outputs(tiny_model, get_task("classification"), val_images,
                                 IMAGE_SIZE)
    assert np.max(np.abs(served["probabilities"] - expected["probabilities"])) <= 1e-4
    np.testing.assert_array_equal(served["class_id"], expected["class_id"])
    # They vary across images by far more than the tolerance, so the check could fail.
    assert np.ptp(expected["probabilities"], axis=0).max() > 1e-2
    single = predictor(val_images[0])
    assert single["probabilities"].shape == (len(CLASS_NAMES),)

    report = vk.export.check(path, model=tiny_model, images=val_images)
    assert report["passed"] and report["top1_agreement"] == 1.0
    with pytest.raises(ValueError, match=r"\[batch, 16, 24, 3\]"):
        predictor(np.zeros((1, 24, 16, 3), np.uint8))


@pytest.mark.slow  # the SavedModel fixture's export and verification take ~50 s
def test_check_against_the_saved_model(portable_exports, exported, val_images):
    report = vk.export.check(portable_exports["onnx"], reference=exported, images=val_images)
    assert report["passed"], report
    assert report["max_abs_probabilities"] <= 1e-4


def test_float16_litert_within_1e_2(tmp_path, tiny_model, tiny_data, val_images):
    path = vk.export.litert(tiny_model, tmp_path, data=tiny_data, quantize="float16")
    size_f16 = os.path.getsize(os.path.join(path, "model.tflite"))
    assert json.load(open(os.path.join(path, "visionkit.json")))["quantization"] == "float16"
    served = vk.export.load(path)(val_images)["probabilities"]
    expected = tiny_model.predict(val_images.astype(np.float32), verbose=0)
    assert np.max(np.abs(served - expected)) <= 1e-2
    assert size_f16 > 0


def test_segmentation_exports_match_keras_masks(tmp_path):
    model = vk.models.build("unet", input_shape=(32, 32, 3), num_classes=3, depth=2,
                            filters=4, batch_norm=False)
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0, 0.25, tuple(variable.shape)).astype("float32"))
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    expected = reference_outputs(model, get_task("segmentation"), images, (32, 32))
    assert len(np.unique(expected["mask"])) > 1
    for name, export in EXPORTERS.items():
        path = export(model, tmp_path / name, task="segmentation", class_names=["a", "b", "c"])
        served = vk.export.load(path)(images)
        assert np.mean(served["mask"] == expected["mask"]) >= 0.999, name
        assert np.max(np.abs(served["probabilities"] - expected["probabilities"])) <= 1e-4
        np.testing.assert_array_equal(served["image_size"], expected["image_size"])


def _perturbed(function_builder):
    """portable_function on a copy of the model with one weight changed."""

    def build(model, task, image_size):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        kernel = clone.trainable_variables[0]
        kernel.assign(kernel + 0.5)
        return function_builder(clone, task, image_size)

    return build


@pytest.mark.parametrize("export_format", [
    "litert", pytest.param("onnx", marks=pytest.mark.slow)])
def test_failed_parity_leaves_no_version(tmp_path, monkeypatch, tiny_model, tiny_data,
                                         export_format):
    monkeypatch.setattr(formats, "portable_function", _perturbed(formats.portable_function))
    with pytest.raises(ExportVerificationError, match="differs from the Keras model"):
        EXPORTERS[export_format](tiny_model, tmp_path / "root", data=tiny_data)
    assert os.listdir(tmp_path / "root") == []  # no version, no staging folder


class _SingularValues(keras.layers.Layer):
    """Scales the features by the largest singular value of a fixed matrix (tf.linalg.svd)."""

    def call(self, inputs):
        matrix = tf.reshape(tf.reduce_mean(inputs, axis=[1, 2]), [-1, 1, 1]) * tf.eye(2)
        top = tf.linalg.svd(matrix, compute_uv=False)[:, 0]
        return inputs * top[:, None, None, None] * 1e-3


def test_unconvertible_op_names_layer_and_fallback(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = _SingularValues(name="singular_values")(x)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    with pytest.raises(vk.export.LiteRTConversionError) as caught:
        vk.export.litert(model, tmp_path / "root", task="classification",
                         class_names=["a", "b"])
    message = str(caught.value)
    assert "singular_values" in message and "Svd" in message
    assert "select_tf_ops=True" in message
    assert os.listdir(tmp_path / "root") == []


STANDALONE = textwrap.dedent("""
    import importlib.abc, json, os, sys

    class NoVisionkit(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("visionkit", "tensorflow", "keras"):
                raise ImportError("not allowed here: " + name)

    sys.meta_path.insert(0, NoVisionkit())
    import numpy as np
    from PIL import Image

    folder, image_file, export_format = sys.argv[1:4]
    meta = json.load(open(os.path.join(folder, "visionkit.json")))
    height, width, _ = meta["input_size"]
    pixels = np.asarray(Image.open(image_file).convert("RGB"))[None]
    assert pixels.shape == (1, height, width, 3)
    if export_format == "litert":
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=os.path.join(folder, meta["file"])
                             ).get_signature_runner("serving_default")
        outputs = runner(images=pixels)
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(os.path.join(folder, meta["file"]))
        names = [output.name for output in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, {"images": pixels})))
    labels = open(os.path.join(folder, "labels.txt")).read().splitlines()
    probabilities = np.asarray(outputs["probabilities"])[0]
    print(json.dumps({"probabilities": probabilities.tolist(),
                      "label": labels[int(np.asarray(outputs["class_id"])[0])],
                      "modules": sorted(m for m in sys.modules
                                        if m.split(".")[0] in ("visionkit", "tensorflow"))}))
""")


@pytest.mark.parametrize("export_format", ["litert", "onnx"])
def test_export_runs_without_visionkit(tmp_path, portable_exports, tiny_model, val_images,
                                       export_format):
    from PIL import Image

    image_file = tmp_path / "image.png"
    Image.fromarray(val_images[0]).save(image_file)
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, str(script), portable_exports[export_format], str(image_file),
         export_format], capture_output=True, text=True, env=environment, cwd=tmp_path,
        timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["modules"] == []
    expected = tiny_model.predict(val_images[:1].astype(np.float32), verbose=0)[0]
    assert np.max(np.abs(np.asarray(result["probabilities"]) - expected)) <= 1e-4
    assert result["label"] == CLASS_NAMES[int(np.argmax(expected))]


def test_parity_metrics_against_hand_computed_values():
    reference = {"mask": np.array([[[0, 0], [1, 1]]]),
                 "probabilities": np.eye(2)[[[[0, 0], [1, 1]]]]}  # no tied classes
    served = {"mask": np.array([[[0, 1], [1, 1]]]),
              "probabilities": reference["probabilities"] + 0.1}
    metrics = parity.measure("segmentation", reference, served)
    assert metrics["mask_agreement"] == 0.75
    # class 0: IoU 1/2; class 1: IoU 2/3.
    assert metrics["mask_miou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert metrics["max_abs_probabilities"] == pytest.approx(0.1)
    assert parity.failures(metrics, None) == [
        "max_abs_probabilities = 0.1 (must be <= 0.0001)",
        "mask_agreement = 0.75 (must be >= 0.999)"]
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    detections = {"boxes": boxes, "scores": np.array([[0.9, 0.8]], np.float32),
                  "classes": np.array([[0, 1]], np.int32), "num_detections": np.array([2])}
    assert parity.measure("detection", detections, detections)["map50"] == pytest.approx(1.0)
    missed = {**detections, "num_detections": np.array([1])}
    assert parity.measure("detection", detections, missed)["map50"] == pytest.approx(0.5)


def test_quantized_parity_holds_the_task_accuracy_within_two_points_of_keras():
    # 1x1x10 masks. Keras paints a spurious class 2 on one pixel; the export paints
    # class 1 there, as the truth does: against Keras's masks class 2 scores IoU 0
    # (mIoU vs Keras 0.6), against the truth the export is the better one.
    truth = np.array([[[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]])
    keras_mask = np.array([[[0, 0, 0, 0, 0, 1, 1, 1, 1, 2]]])
    served_mask = np.array([[[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]])
    reference = {"mask": keras_mask, "probabilities": np.eye(3)[keras_mask]}
    served = {"mask": served_mask, "probabilities": np.eye(3)[served_mask]}
    metrics = parity.measure("segmentation", reference, served, truth)
    assert metrics["mask_agreement"] == pytest.approx(0.9)
    assert metrics["mask_miou"] == pytest.approx((1 + 0.8 + 0) / 3)
    assert metrics["miou"] == 1.0  # served == truth
    assert metrics["reference_miou"] == pytest.approx((1 + 0.8 + 0) / 3)
    assert metrics["miou_drop"] == pytest.approx(0.6 - 1.0)  # the export gained
    # int8: pixel agreement 0.9 < 0.98 fails; the bar against Keras's own mIoU is
    # replaced by the drop against the truth, which holds.
    assert parity.failures(metrics, "int8") == ["mask_agreement = 0.9 (must be >= 0.98)"]
    without_truth = parity.measure("segmentation", reference, served)
    assert "miou_drop" not in without_truth
    assert [line.split(" =")[0] for line in parity.failures(without_truth, "int8")] == [
        "mask_agreement", "mask_miou"]
    # Detection: Keras finds both true boxes, the export one: mAP50 1.0 -> 0.5.
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    keras_boxes = {"boxes": boxes, "scores": np.array([[0.9, 0.8]], np.float32),
                   "classes": np.array([[0, 1]], np.int32), "num_detections": np.array([2])}
    served_boxes = {**keras_boxes, "num_detections": np.array([1])}
    true_boxes = [{"boxes": boxes[0], "labels": np.array([0, 1])}]
    metrics = parity.measure("detection", keras_boxes, served_boxes, true_boxes)
    assert metrics["reference_map50_truth"] == pytest.approx(1.0)
    assert metrics["map50_truth"] == pytest.approx(0.5)
    assert parity.failures(metrics, "int8") == ["map50_drop = 0.5 (must be <= 0.02)"]
    # A Keras model right nowhere: "within 2 points" of 0 proves nothing, so the bar
    # against Keras's own detections stays.
    wrong_truth = [{"boxes": boxes[0] + 100, "labels": np.array([0, 1])}]
    metrics = parity.measure("detection", keras_boxes, served_boxes, wrong_truth)
    assert metrics["reference_map50_truth"] == 0.0 and metrics["map50_drop"] == 0.0
    [failure] = parity.failures(metrics, "int8")
    assert failure.startswith("map50 = 0.5 (must be >= 0.98); against the truth")
    assert "own reference_map50_truth 0 is below 0.5" in failure
    assert parity.failures(metrics, None) == ["map50 = 0.5 (must be >= 0.99)"]


def test_format_roots_and_recipe_field(tmp_path):
    assert formats.format_root(tmp_path, "saved_model") == str(tmp_path)
    assert formats.format_root(tmp_path, "onnx") == os.path.join(tmp_path, "onnx")
    with pytest.raises(ValueError, match="tflite"):
        formats.format_root(tmp_path, "tflite")
    from visionkit.config import parse_recipe

    base = {"name": "r", "data": {"source": "digits"}, "model": {"name": "simple_cnn"}}
    assert parse_recipe(base).export.formats == ["saved_model"]
    recipe = parse_recipe({**base, "export": {"formats": ["litert", "onnx"]}})
    assert recipe.export.formats == ["litert", "onnx"]
    with pytest.raises(Exception, match="formats"):
        parse_recipe({**base, "export": {"formats": ["tflite"]}})


def test_check_export_command_prints_the_parity_table(tmp_path, portable_exports, tiny_model,
                                                      capsys):
    from visionkit.cli import main

    checkpoint = tmp_path / "model.keras"
    tiny_model.save(checkpoint)
    assert main(["check-export", portable_exports["litert"], "--model", str(checkpoint),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["format"] == "litert" and report["images"] == 16
    assert report["max_abs_probabilities"] <= 1e-4
    # Against another model with different weights, the table fails and the status is 1.
    other = keras.models.clone_model(tiny_model)
    other.set_weights([w * 1.5 for w in tiny_model.get_weights()])
    other.save(checkpoint)
    assert main(["check-export", portable_exports["litert"], "--model", str(checkpoint)]) == 1
    printed = capsys.readouterr().out
    assert "max_abs_probabilities" in printed and "FAILED:" in printed


@pytest.mark.slow  # a YOLOv8 converts in ~25 s (LiteRT) and ~40 s (ONNX) on 2 cores
def test_detector_exports_decode_and_suppress_inside(tmp_path):
    model = vk.models.build("yolov8", input_shape=(64, 64, 3), num_classes=2,
                            confidence_threshold=0.3)
    images = np.random.default_rng(3).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    expected = reference_outputs(model, get_task("detection"), images, (64, 64))
    assert 0 < expected["num_detections"].min() < 100  # NMS removed some boxes, kept some
    for name, export in EXPORTERS.items():
        # verify=False: on noise, this untrained detector's scores sit near its threshold
        # and the export's greedy NMS and keras-cv's padded NMS part on near-ties (mAP50
        # 0.975 on 16 noise images, below the 0.99 gate); the decoding and NMS graph itself
        # is compared exactly here.
        path = export(model, tmp_path / name, task="detection", class_names=["a", "b"],
                      verify=False)
        predictor = vk.export.load(path)
        assert predictor.batch_size == 1
        served = predictor(images)
        np.testing.assert_array_equal(served["num_detections"], expected["num_detections"])
        # An untrained head scores both classes almost alike: a near-tie may flip.
        assert np.mean(served["classes"] == expected["classes"]) >= 0.99
        np.testing.assert_allclose(served["boxes"], expected["boxes"], atol=1e-3)
        np.testing.assert_allclose(served["scores"], expected["scores"], atol=1e-4)
