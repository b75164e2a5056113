"""The exported SavedModel, served without visionkit, against the Keras model."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, IMAGE_SIZE
from PIL import Image

import visionkit as vk
from visionkit.tasks import Task

TOLERANCE = 1e-5
OTHER_SIZE = (37, 29)  # larger and of another aspect ratio than 16x24

# Runs in a fresh interpreter: only TensorFlow and NumPy, never visionkit.
CHILD_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import tensorflow as tf

    version_dir, inputs_path, png_dir, outputs_path = sys.argv[1:]
    inputs = np.load(inputs_path)
    loaded = tf.saved_model.load(version_dir)
    serve_images = loaded.signatures["serving_default"]
    serve_bytes = loaded.signatures["serve_bytes"]
    at_size = serve_images(images=tf.constant(inputs["at_size"]))
    other_size = serve_images(images=tf.constant(inputs["other_size"]))
    png_files = sorted(os.listdir(png_dir))
    encoded = [open(os.path.join(png_dir, name), "rb").read() for name in png_files]
    from_png = serve_bytes(images=tf.constant(encoded))
    np.savez(outputs_path,
             **{f"at_size_{k}": v.numpy() for k, v in at_size.items()},
             **{f"other_size_{k}": v.numpy() for k, v in other_size.items()},
             **{f"png_{k}": v.numpy() for k, v in from_png.items()})
    assert "visionkit" not in sys.modules, "the SavedModel pulled visionkit in"
    print("CHILD_OK", sorted(loaded.signatures))
""")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def child_outputs(tmp_path_factory, exported, val_images):
    """What a process that never imports visionkit gets from the SavedModel."""
    work = tmp_path_factory.mktemp("child")
    rng = np.random.default_rng(1)
    other = rng.integers(0, 256, size=(3, *OTHER_SIZE, 3), dtype=np.uint8)
    np.savez(work / "inputs.npz", at_size=val_images, other_size=other)
    png_dir = work / "png"
    png_dir.mkdir()
    for index, image in enumerate(val_images):
        (png_dir / f"{index:03d}.png").write_bytes(_png(image))
    script = work / "child.py"
    script.write_text(CHILD_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(script), exported, str(work / "inputs.npz"), str(png_dir),
         str(work / "outputs.npz")],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CHILD_OK" in result.stdout
    outputs = dict(np.load(work / "outputs.npz"))
    return outputs, other


def _keras_probabilities(model, images: np.ndarray) -> np.ndarray:
    pixels = tf.constant(images, tf.float32)
    if tuple(images.shape[1:3]) != IMAGE_SIZE:
        # The data's preprocessing (the default): bilinear with antialiasing.
        pixels = tf.image.resize(pixels, IMAGE_SIZE, antialias=True)
    return np.asarray(model(pixels, training=False))


@pytest.mark.heavy
def test_fresh_process_matches_keras_at_model_size(child_outputs, tiny_model, val_images):
    outputs, _ = child_outputs
    expected = _keras_probabilities(tiny_model, val_images)
    assert outputs["at_size_probabilities"].dtype == np.float32
    assert outputs["at_size_probabilities"].shape == (len(val_images), len(CLASS_NAMES))
    np.testing.assert_allclose(outputs["at_size_probabilities"], expected, atol=TOLERANCE,
                               rtol=0)
    assert outputs["at_size_class_id"].dtype == np.int32
    np.testing.assert_array_equal(outputs["at_size_class_id"], expected.argmax(axis=-1))
    # The tiny random model is not constant: the comparison above is not trivially true.
    assert np.ptp(expected, axis=0).max() > 0.05


@pytest.mark.heavy
def test_fresh_process_resizes_other_sizes_like_tf_image_resize(child_outputs, tiny_model):
    outputs, other = child_outputs
    expected = _keras_probabilities(tiny_model, other)
    np.testing.assert_allclose(outputs["other_size_probabilities"], expected, atol=TOLERANCE,
                               rtol=0)
    # A resize with other settings (nearest, no antialiasing) would give other answers.
    nearest = np.asarray(tiny_model(tf.image.resize(
        tf.constant(other, tf.float32), IMAGE_SIZE, method="nearest"), training=False))
    assert np.abs(nearest - expected).max() > 10 * TOLERANCE
    aliased = np.asarray(tiny_model(tf.image.resize(
        tf.constant(other, tf.float32), IMAGE_SIZE, antialias=False), training=False))
    assert np.abs(aliased - expected).max() > 10 * TOLERANCE


@pytest.mark.heavy
def test_fresh_process_serve_bytes_on_png_matches(child_outputs, tiny_model, val_images):
    outputs, _ = child_outputs
    expected = _keras_probabilities(tiny_model, val_images)
    np.testing.assert_array_equal(outputs["png_class_id"], outputs["at_size_class_id"])
    np.testing.assert_allclose(outputs["png_probabilities"], expected, atol=TOLERANCE, rtol=0)


@pytest.mark.heavy
def test_saved_model_cli_lists_both_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--all", "--dir", exported], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    assert "signature_def['serving_default']" in text
    assert "signature_def['serve_bytes']" in text
    serving = text.split("signature_def['serving_default']")[1]
    assert "DT_UINT8" in serving and "(-1, -1, -1, 3)" in serving
    serve_bytes = text.split("signature_def['serve_bytes']")[1].split("signature_def[")[0]
    assert "DT_STRING" in serve_bytes
    for output in ("outputs['probabilities']", "outputs['class_id']"):
        assert output in serving and output in serve_bytes


def test_mixed_precision_outputs_are_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((*IMAGE_SIZE, 3))
        features = keras.layers.Rescaling(1 / 255)(inputs)
        features = keras.layers.Conv2D(4, 3, activation="relu")(features)
        features = keras.layers.GlobalAveragePooling2D()(features)
        outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(features)
        model = keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output.dtype == "bfloat16"  # the case under test: low-precision outputs

    path = vk.export.saved_model(model, tmp_path / "mixed", task="classification",
                                 class_names=CLASS_NAMES)
    predictor = vk.export.load(path)  # one load: both signatures' outputs are checked
    images = np.random.default_rng(2).integers(0, 256, (4, *IMAGE_SIZE, 3), dtype=np.uint8)
    served = predictor(images)["probabilities"]  # serving_default
    assert served.dtype == np.float32
    expected = np.asarray(model(images.astype(np.float32), training=False), np.float32)
    np.testing.assert_allclose(served, expected, atol=1e-2)
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, "PNG")
    from_bytes = predictor.predict_bytes([buffer.getvalue()])["probabilities"]  # serve_bytes
    assert from_bytes.dtype == np.float32
    np.testing.assert_allclose(from_bytes[0], served[0], atol=1e-2)


class RawScores(Task):
    """A task that serves the model's outputs as they come, and the sizes it was given."""

    name = "raw_scores"

    def serving_outputs(self, outputs, image_sizes, model):
        return {"scores": outputs, "image_sizes": image_sizes}


def test_task_gets_float32_outputs_and_original_image_sizes(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((*IMAGE_SIZE, 3))
        features = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(len(CLASS_NAMES))(features))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output.dtype == "bfloat16"

    predictor = vk.export.load(vk.export.saved_model(
        model, tmp_path / "raw", task=RawScores(), class_names=CLASS_NAMES))
    assert predictor.task == "raw_scores"
    outputs = predictor(np.zeros((2, 30, 41, 3), np.uint8))
    assert outputs["scores"].dtype == np.float32  # cast before the task sees them
    assert outputs["image_sizes"].dtype == np.int32
    np.testing.assert_array_equal(outputs["image_sizes"], [[30, 41], [30, 41]])
    encoded = [_png(np.zeros(size, np.uint8)) for size in [(5, 7, 3), (64, 9, 3)]]
    np.testing.assert_array_equal(predictor.predict_bytes(encoded)["image_sizes"],
                                  [[5, 7], [64, 9]])
