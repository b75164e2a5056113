"""`predict_files` and `format_predictions`: what the CLI's `predict` shows."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES
from PIL import Image

import visionkit as vk


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(6)
    files = []
    for index, size in enumerate([(16, 24), (33, 20), (50, 60)]):
        path = tmp_path / f"image_{index}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    return files


def test_predict_files_top_classes(exported, image_files):
    predictor = vk.export.load(exported)
    results = vk.export.predict_files(exported, image_files, top_k=2, batch_size=2)
    assert [result["file"] for result in results] == image_files
    for result in results:
        decoded = tf.io.decode_png(open(result["file"], "rb").read(), channels=3).numpy()
        probabilities = predictor(decoded)["probabilities"]
        order = np.argsort(-probabilities)
        assert [entry["class_id"] for entry in result["top"]] == list(order[:2])
        assert [entry["class_name"] for entry in result["top"]] == \
            [CLASS_NAMES[i] for i in order[:2]]
        np.testing.assert_allclose([entry["probability"] for entry in result["top"]],
                                   probabilities[order[:2]], atol=1e-5)
        assert result["class_id"] == order[0]
        assert result["class_name"] == CLASS_NAMES[order[0]]
        assert result["probability"] == result["top"][0]["probability"]


def test_predict_files_top_k_and_predictor_argument(exported, image_files):
    predictor = vk.export.load(exported)
    results = vk.export.predict_files(predictor, image_files[:1], top_k=10)
    assert len(results[0]["top"]) == len(CLASS_NAMES)  # at most the number of classes
    with pytest.raises(ValueError, match="top_k >= 1"):
        vk.export.predict_files(predictor, image_files, top_k=0)


def test_predict_files_names_the_bad_file(exported, image_files, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        vk.export.predict_files(exported, [*image_files, str(bad)])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        vk.export.predict_files(exported, [str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="at least one image file"):
        vk.export.predict_files(exported, [])


def test_predict_files_reads_a_folder_as_its_images(exported, image_files, tmp_path):
    # image_files live in tmp_path; a notes file and a hidden file sit beside them.
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    with pytest.warns(vk.errors.DataWarning, match=r"left out 1 file\(s\).*notes\.txt"):
        from_folder = vk.export.predict_files(exported, [tmp_path], top_k=1)
    one_by_one = vk.export.predict_files(exported, image_files, top_k=1)
    assert from_folder == one_by_one
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"in the folder '.*empty'; found none"):
        vk.export.predict_files(exported, [tmp_path / "empty"])


def test_format_predictions(exported, image_files):
    results = vk.export.predict_files(exported, image_files, top_k=2)
    text = vk.export.format_predictions(results)
    lines = text.splitlines()
    assert len(lines) == 3 * 3  # per file: a headline and two ranked classes
    for index, result in enumerate(results):
        headline = lines[3 * index]
        assert headline == (f"{result['file']}: {result['class_name']} "
                            f"({result['probability']:.3f})")
        second = result["top"][1]
        assert lines[3 * index + 2].split() == ["2.", second["class_name"],
                                                f"{second['probability']:.3f}"]


def test_format_predictions_for_other_outputs():
    text = vk.export.format_predictions(
        [{"file": "a.png", "outputs": {"mask": np.zeros((4, 5)), "scores": np.zeros(3)}}])
    assert text == "a.png: mask [4, 5], scores [3]"
