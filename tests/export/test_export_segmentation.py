"""Exported segmenters: masks at the sent image's resolution, in a process without visionkit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import visionkit as vk

SEG_IMAGE_SIZE = (16, 24)  # the model's input, non-square
SEG_CLASSES = ("background", "disc", "bar")
# Sizes of the images sent to the SavedModel: neither the model's size nor its aspect.
SENT_SIZES = ((37, 50), (20, 13))

# Loads the SavedModel with TensorFlow only (visionkit is never imported) and saves what
# both signatures return for the images given in an .npz file.
FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    inputs = np.load(sys.argv[2])
    loaded = tf.saved_model.load(sys.argv[1])
    served = {}
    for key in ("first", "second"):
        out = loaded.signatures["serving_default"](images=tf.constant(inputs[key][None]))
        served[key + "_mask"] = out["mask"].numpy()
        served[key + "_probabilities"] = out["probabilities"].numpy()
    encoded = tf.constant([inputs["first_png"].tobytes(), inputs["second_png"].tobytes()])
    out = loaded.signatures["serve_bytes"](images=encoded)
    served["bytes_mask"] = out["mask"].numpy()
    served["bytes_image_size"] = out["image_size"].numpy()
    assert "visionkit" not in sys.modules
    np.savez(sys.argv[3], **served)
""")


def build_segmenter(seed: int = 0):
    """A tiny U-Net with seeded random weights large enough to give confident, varied masks."""
    # Without batch norm: random moving variances would be negative.
    model = vk.models.build("unet", (*SEG_IMAGE_SIZE, 3), len(SEG_CLASSES), depth=2, filters=4,
                            batch_norm=False)
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        variable.assign(rng.normal(0.0, 0.6, tuple(variable.shape)).astype(variable.dtype))
    return model


def keras_mask(model, image: np.ndarray) -> np.ndarray:
    """The reference: resize to the model, run Keras, resize the probabilities back, argmax."""
    pixels = tf.image.resize(tf.cast(image[None], tf.float32), SEG_IMAGE_SIZE, antialias=True)
    probabilities = model(pixels, training=False)
    resized = tf.image.resize(probabilities, image.shape[:2])
    return np.asarray(tf.argmax(resized, axis=-1, output_type=tf.int32))[0]


@pytest.fixture(scope="module")
def segmenter_export(tmp_path_factory):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (12, *SEG_IMAGE_SIZE, 3), dtype=np.uint8)
    masks = rng.integers(0, len(SEG_CLASSES), (12, *SEG_IMAGE_SIZE))
    data = vk.data.from_arrays(images, masks=masks, class_names=SEG_CLASSES, batch_size=4)
    model = build_segmenter()
    root = tmp_path_factory.mktemp("saved_models") / "tiny_unet"
    return model, vk.export.saved_model(model, root, data=data)


@pytest.mark.heavy
def test_served_mask_equals_keras_argmax_at_the_sent_resolution(segmenter_export, tmp_path):
    model, path = segmenter_export
    rng = np.random.default_rng(2)
    first, second = (rng.integers(0, 256, (*size, 3), dtype=np.uint8) for size in SENT_SIZES)
    encode = lambda image: np.frombuffer(tf.io.encode_png(image).numpy(), np.uint8)  # noqa: E731
    np.savez(tmp_path / "inputs.npz", first=first, second=second, first_png=encode(first),
             second_png=encode(second))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, str(script), path, str(tmp_path / "inputs.npz"),
                    str(tmp_path / "served.npz")], check=True, env=env, timeout=300)
    served = np.load(tmp_path / "served.npz")

    for key, image in (("first", first), ("second", second)):
        mask = served[f"{key}_mask"][0]
        assert mask.dtype == np.int32 and mask.shape == image.shape[:2]
        np.testing.assert_array_equal(mask, keras_mask(model, image))
        assert served[f"{key}_probabilities"].shape == (1, *image.shape[:2], len(SEG_CLASSES))
        assert len(np.unique(mask)) > 1  # a real mask, not one class everywhere

    # serve_bytes: one batch of two sizes, padded to the largest height and width with -1.
    (h1, w1), (h2, w2) = SENT_SIZES
    assert served["bytes_image_size"].tolist() == [[h1, w1], [h2, w2]]
    masks = served["bytes_mask"]
    assert masks.shape == (2, max(h1, h2), max(w1, w2))
    np.testing.assert_array_equal(masks[0, :h1, :w1], served["first_mask"][0])
    np.testing.assert_array_equal(masks[1, :h2, :w2], served["second_mask"][0])
    assert np.all(masks[1, h2:] == -1) and np.all(masks[1, :, w2:] == -1)


@pytest.mark.heavy
def test_predict_writes_the_mask_and_an_overlay(segmenter_export, tmp_path):
    model, path = segmenter_export
    image = np.random.default_rng(3).integers(0, 256, (30, 22, 3), dtype=np.uint8)
    file = tmp_path / "photo.png"
    Image.fromarray(image).save(file)
    from visionkit.cli import main

    assert main(["predict", path, str(file), "--out", str(tmp_path / "out")]) == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "photo_mask.png"))
    np.testing.assert_array_equal(mask, keras_mask(model, image))
    overlay = np.asarray(Image.open(tmp_path / "out" / "photo_overlay.png"))
    assert overlay.shape == (30, 22, 3)
    # Background pixels keep the image; the others are tinted.
    np.testing.assert_array_equal(overlay[mask == 0], image[mask == 0])
    assert not np.array_equal(overlay[mask > 0], image[mask > 0])
    [result] = vk.export.predict_files(path, [file], out_dir=tmp_path / "again")
    assert sum(result["class_fractions"].values()) == pytest.approx(1.0)
    assert "photo_mask.png" in vk.export.format_predictions([result])
