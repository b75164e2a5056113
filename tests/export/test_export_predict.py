"""`predict_files` and `format_predictions`: what the CLI's `predict` shows."""

from __future__ import annotations

import json
import os
import warnings

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


def _bad_files(folder):
    """A truncated JPEG, a text file named .png and an empty file, in `folder`."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
        folder / "whole.jpg", quality=90)
    contents = (folder / "whole.jpg").read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(contents[:len(contents) // 2])
    (folder / "notes.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    return [str(folder / name) for name in ("truncated.jpg", "notes.png", "empty.png")]


def test_predict_files_leaves_out_undecodable_files_and_says_so(exported, image_files,
                                                                tmp_path):
    bad = _bad_files(tmp_path / "bad")
    # Bad files among good ones, in batches of two: every good file is still predicted.
    mixed = [image_files[0], bad[0], image_files[1], bad[1], bad[2], image_files[2]]
    expected = vk.export.predict_files(exported, image_files, top_k=1)
    with pytest.warns(vk.errors.DataWarning) as record:
        results, skipped = vk.export.predict_files(exported, mixed, top_k=1, batch_size=2,
                                                   return_skipped=True)
    assert results == expected
    assert [file for file, _ in skipped] == bad
    messages = [str(w.message) for w in record if issubclass(w.category,
                                                              vk.errors.DataWarning)]
    assert len(messages) == 1  # said once, for all of them
    assert "Left out 3 of 6 image file(s)" in messages[0]
    assert all(file in messages[0] for file in bad)
    assert all(reason and reason in messages[0] for _, reason in skipped)
    # The decoder's own words for each, not TensorFlow's graph context.
    reasons = [reason for _, reason in skipped]
    assert "Invalid JPEG data" in reasons[0] and "Unknown image file format" in reasons[1]
    assert "Input is empty" in reasons[2]


def test_predict_files_names_only_the_first_few_left_out_files(exported, image_files,
                                                               tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    bad = []
    for index in range(8):
        (folder / f"bad_{index}.png").write_text("not an image")
        bad.append(str(folder / f"bad_{index}.png"))
    with pytest.warns(vk.errors.DataWarning, match=r"Left out 8 of 9") as record:
        results = vk.export.predict_files(exported, [*bad, image_files[0]], top_k=1)
    assert [result["file"] for result in results] == [image_files[0]]
    message = str(record[0].message)
    assert all(file in message for file in bad[:5])
    assert bad[5] not in message and "and 3 more" in message


def test_a_folder_and_its_files_leave_out_the_same_bad_files(exported, image_files,
                                                             tmp_path):
    bad = _bad_files(tmp_path)  # beside the good image files
    with pytest.warns(vk.errors.DataWarning, match="Left out 3 of 6"):
        from_folder, skipped_in_folder = vk.export.predict_files(
            exported, [tmp_path], top_k=1, return_skipped=True)
    with pytest.warns(vk.errors.DataWarning, match="Left out 3 of 6"):
        named, skipped_named = vk.export.predict_files(
            exported, sorted([*image_files, *bad]), top_k=1, return_skipped=True)
    assert from_folder == named
    assert sorted(skipped_in_folder) == sorted(skipped_named)
    assert sorted(file for file, _ in skipped_named) == sorted(bad)


def test_predict_files_fails_naming_the_files_when_none_decodes(exported, tmp_path):
    bad = _bad_files(tmp_path)
    with pytest.raises(vk.errors.BadFileError) as caught:
        vk.export.predict_files(exported, bad)
    assert [file for file, _ in caught.value.bad_files] == bad
    with pytest.raises(vk.errors.BadFileError, match="notes.png"):
        vk.export.predict_files(exported, bad[1:], skip_undecodable=False)


def test_predict_files_names_the_bad_arguments(exported, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        vk.export.predict_files(exported, [str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="at least one image file"):
        vk.export.predict_files(exported, [])


def test_the_predict_command_exit_status_with_left_out_files(exported, image_files,
                                                             tmp_path, capsys):
    from visionkit.cli import main

    bad = _bad_files(tmp_path / "bad")
    with pytest.warns(vk.errors.DataWarning, match="Left out 1 of 2"):
        status = main(["predict", exported, image_files[0], bad[0], "--json"])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert [result["file"] for result in printed] == [image_files[0]]
    with pytest.warns(vk.errors.DataWarning, match="Left out 1 of 2"):
        assert main(["predict", exported, image_files[0], bad[0], "--strict"]) == 1
    assert image_files[0] in capsys.readouterr().out  # the good file is still printed
    # The text output lists every left-out file, not only the warning's first five.
    many = [str(tmp_path / f"empty_{index}.png") for index in range(7)]
    for file in many:
        open(file, "wb").close()
    with pytest.warns(vk.errors.DataWarning, match=r"\.\.\. and 2 more"):
        assert main(["predict", exported, image_files[0], *many]) == 0
    printed = capsys.readouterr().out
    assert "Left out 7 file(s):" in printed and all(f"'{file}': " in printed for file in many)
    assert main(["predict", exported, image_files[0], "--strict"]) == 0
    assert main(["predict", exported, *bad]) == 2
    error = capsys.readouterr().err
    assert all(file in error for file in bad)


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



def test_a_link_to_a_missing_file_in_a_folder_is_left_out_and_named(exported, image_files,
                                                                     tmp_path):
    # What a photo library or a half-synced folder leaves: links whose targets are gone.
    folder = tmp_path / "photos"
    folder.mkdir()
    for file in image_files:
        os.replace(file, folder / os.path.basename(file))
    os.symlink(tmp_path / "deleted.jpg", folder / "gone.jpg")
    with pytest.warns(vk.errors.DataWarning, match="Left out 1 of 4") as record:
        results, skipped = vk.export.predict_files(exported, [folder], return_skipped=True)
    assert len(results) == 3
    assert skipped == [(str(folder / "gone.jpg"),
                        f"a symbolic link to the missing {str(tmp_path / 'deleted.jpg')!r}")]
    assert "gone.jpg" in str(record[0].message)
    # Named, the same link is a missing argument: an error naming it.
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg.*symbolic link.*deleted\.jpg"):
        vk.export.predict_files(exported, [folder / "gone.jpg"])
    with pytest.raises(vk.errors.BadFileError, match="gone.jpg"):
        vk.export.predict_files(exported, [folder], skip_undecodable=False)


class _HalfSegmenter(vk.export.Predictor):
    """A stand-in for an exported segmenter: class 1 on an image's left half (no export,
    so that the files `predict_files` writes are checked fast)."""

    def __init__(self):  # noqa: D107 - no SavedModel to load
        self.metadata = {"task": "segmentation", "class_names": ["background", "left"]}

    def predict_bytes(self, encoded_images, batch_size=64):
        images = [tf.io.decode_image(data, channels=3).numpy() for data in encoded_images]
        height = max(image.shape[0] for image in images)
        width = max(image.shape[1] for image in images)
        masks = np.full((len(images), height, width), -1, np.int32)
        for mask, image in zip(masks, images):
            mask[:image.shape[0], :image.shape[1]] = 0
            mask[:image.shape[0], :image.shape[1] // 2] = 1
        return {"mask": masks, "image_size": np.array([image.shape[:2] for image in images])}


def test_inputs_of_the_same_name_do_not_overwrite_each_others_masks(tmp_path):
    # A folder holding photo.jpg and photo.png, and two sub-folders each with 001.png.
    sizes = {"photo.jpg": (10, 8), "photo.png": (12, 6), "x/001.png": (8, 4),
             "y/001.png": (6, 10)}
    for name, size in sizes.items():
        (tmp_path / "in" / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(tmp_path / "in" / name)
    out = tmp_path / "out"
    with pytest.warns(vk.errors.DataWarning, match=r"2 image file\(s\) share their name"
                      r"(.|\n)*photo.png': writes photo_2_mask.png"):
        results = vk.export.predict_files(_HalfSegmenter(), [tmp_path / "in"], out_dir=out)
    masks = [result["mask_file"] for result in results]
    assert len(set(masks)) == 4 and sorted(os.listdir(out)) == sorted(
        f"{stem}_{kind}.png" for stem in ("001", "001_2", "photo", "photo_2")
        for kind in ("mask", "overlay"))
    for result in results:  # each mask file holds its own image's mask
        height, width = sizes[os.path.relpath(result["file"], tmp_path / "in")]
        assert np.asarray(Image.open(result["mask_file"])).shape == (height, width)
    # The same file named twice writes the same files, with no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = vk.export.predict_files(_HalfSegmenter(), [tmp_path / "in" / "photo.png"] * 2)
    assert again[0]["mask_file"] == again[1]["mask_file"]


def test_a_second_run_on_a_folder_does_not_predict_the_first_runs_masks(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cat.png", "dog.jpg"):
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / name)
    first = vk.export.predict_files(_HalfSegmenter(), [folder])
    assert sorted(os.listdir(folder)) == ["cat.png", "cat_mask.png", "cat_overlay.png",
                                          "dog.jpg", "dog_mask.png", "dog_overlay.png"]
    with pytest.warns(vk.errors.DataWarning, match=r"left out 4 file\(s\) that an earlier "
                      r"prediction wrote(.|\n)*cat_mask.png"):
        second = vk.export.predict_files(_HalfSegmenter(), [folder])
    assert [r["file"] for r in second] == [r["file"] for r in first]
    assert "cat_mask_mask.png" not in os.listdir(folder)
    # An --out folder inside the input folder: its files are outputs too.
    vk.export.predict_files(_HalfSegmenter(), [folder / "cat.png"], out_dir=folder / "out")
    with pytest.warns(vk.errors.DataWarning, match=r"left out 6 file\(s\)"):
        third = vk.export.predict_files(_HalfSegmenter(), [folder], out_dir=folder / "out")
    assert len(third) == 2
    # Named, an output is predicted like any image; an image merely named *_mask is kept.
    assert len(vk.export.predict_files(_HalfSegmenter(), [folder / "cat_mask.png"])) == 1
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / "face_mask.png")
    with pytest.warns(vk.errors.DataWarning):
        names = [os.path.basename(r["file"])
                 for r in vk.export.predict_files(_HalfSegmenter(), [folder])]
    assert "face_mask.png" in names
