"""`vk.export.load` and the `Predictor` it returns."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, IMAGE_SIZE
from PIL import Image

import visionkit as vk


@pytest.fixture(scope="module")
def predictor(exported):
    return vk.export.load(exported)


def test_load_on_a_root_picks_the_latest_version(tmp_path, exported, tiny_model):
    root = tmp_path / "root"
    shutil.copytree(exported, root / "9")
    path = vk.export.saved_model(tiny_model, root, task="classification",
                                 class_names=CLASS_NAMES, verify=False)
    assert os.path.basename(path) == "10"
    (root / ".visionkit-export-leftover").mkdir()  # ignored, as TF Serving ignores it
    predictor = vk.export.load(root)
    assert predictor.version == 10
    assert predictor.path == str(root / "10")
    assert predictor.metadata["version"] == 10
    assert vk.export.load(root / "9").version == 9


def test_predictor_attributes(predictor, exported):
    assert predictor.path == exported
    assert predictor.version == 1
    assert predictor.task == "classification"
    assert predictor.class_names == list(CLASS_NAMES)
    assert predictor.input_size == (16, 24, 3)
    assert predictor.metadata["metrics"]["accuracy"] == 0.75
    assert "classification" in repr(predictor)


def test_predictor_matches_keras_and_batches(predictor, tiny_model, val_images):
    expected = np.asarray(tiny_model(val_images.astype(np.float32), training=False))
    outputs = predictor(val_images, batch_size=3)  # 10 images in 4 calls
    assert set(outputs) == {"probabilities", "class_id"}
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["class_id"], expected.argmax(-1))
    tensor_outputs = predictor(tf.constant(val_images))
    np.testing.assert_array_equal(tensor_outputs["class_id"], outputs["class_id"])


def test_single_image_has_no_batch_axis(predictor, val_images):
    single = predictor(val_images[3])
    batch = predictor(val_images)
    assert single["probabilities"].shape == (len(CLASS_NAMES),)
    assert single["class_id"].shape == ()
    np.testing.assert_allclose(single["probabilities"], batch["probabilities"][3], atol=1e-6)


def test_pixel_dtypes(predictor, val_images):
    as_float = predictor(val_images.astype(np.float32))
    np.testing.assert_array_equal(as_float["probabilities"], predictor(val_images)["probabilities"])
    with pytest.raises(ValueError, match="whole numbers in 0..255"):
        predictor(val_images.astype(np.float32) + 0.5)
    with pytest.raises(ValueError, match="whole numbers in 0..255"):
        predictor(val_images.astype(np.int32) + 256)
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\]"):
        predictor(np.zeros((2, 16, 24), np.uint8))
    with pytest.raises(ValueError, match="empty batch"):
        predictor(np.zeros((0, 16, 24, 3), np.uint8))


def _encode(image: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "BMP", "GIF"])
def test_predict_bytes_decodes_each_format_as_pil_does(predictor, image_format):
    # JPEG through libjpeg's accurate IDCT, as PIL decodes it (TensorFlow's default fast
    # IDCT differs by a few grey levels).
    rng = np.random.default_rng(4)
    sizes = [(16, 24), (40, 30), (9, 50)]  # a batch of different sizes
    encoded = [_encode(rng.integers(0, 256, (*size, 3), dtype=np.uint8), image_format)
               for size in sizes]
    outputs = predictor.predict_bytes(encoded, batch_size=2)
    assert outputs["probabilities"].shape == (3, len(CLASS_NAMES))
    for index, data in enumerate(encoded):
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert decoded.shape[:2] == sizes[index]
        expected = predictor(decoded)
        np.testing.assert_allclose(outputs["probabilities"][index], expected["probabilities"],
                                   atol=1e-5)
        assert outputs["class_id"][index] == expected["class_id"]


def test_predict_bytes_rejects_bad_input(predictor):
    with pytest.raises(ValueError, match="at least one"):
        predictor.predict_bytes([])
    with pytest.raises(TypeError, match="element 1 is str"):
        predictor.predict_bytes([b"", "not bytes"])
    with pytest.raises(tf.errors.InvalidArgumentError):
        predictor.predict_bytes([b"this is not an image"])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such path"):
        vk.export.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".visionkit-export-x").mkdir()
    with pytest.raises(FileNotFoundError, match="has neither"):
        vk.export.load(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(NotADirectoryError):
        vk.export.load(tmp_path / "file.txt")
    (tmp_path / "broken" / "3").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no saved_model.pb"):
        vk.export.load(tmp_path / "broken")


def test_load_rejects_a_saved_model_not_written_by_visionkit(tmp_path):
    module = tf.Module()
    module.double = tf.function(lambda x: 2 * x,
                                 input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "plain" / "1"))
    with pytest.raises(ValueError, match="not a visionkit export"):
        vk.export.load(tmp_path / "plain")


def test_images_at_model_size_are_not_resized(predictor, tiny_model):
    # Pixels at the model's size reach the model unchanged (no resampling at all).
    image = np.random.default_rng(5).integers(0, 256, (1, *IMAGE_SIZE, 3), dtype=np.uint8)
    expected = np.asarray(tiny_model(image.astype(np.float32), training=False))
    np.testing.assert_array_equal(predictor(image)["probabilities"], expected)
