"""One pixel path: what the served model receives equals what the training pipeline made.

An echo probe model (its served probabilities encode the pixels it received, see
`parity_helpers`) is exported from `image_folder` data sets built with each option. For
each file of the matrix {EXIF orientation 1..8} x {1x, 2.5x, 5x, 9x the input size} x
{JPEG, PNG 8-bit, PNG 16-bit, grayscale, RGBA, palette, CMYK JPEG, WebP, BMP, GIF}, the
pixels reaching the network through `serve_bytes` equal the training pipeline's within 1
grey level, and so do those through `serving_default` fed PIL's decoded upright array.
Cells a format cannot express are skipped by name. The default run checks a diagonal;
the full matrix over every resize method (and DCT scaling, no antialiasing, stored
orientation) is `slow`, with `visionkit predict` and a process that never imports
visionkit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import hash_tree
from parity_helpers import (
    FORMATS,
    METHODS,
    ORIENTATIONS,
    SCALES,
    cells,
    decode_echo,
    echo_model,
    encode_file,
    file_name,
    reference_array,
    skip_reason,
    write_tree,
)
from PIL import Image

import visionkit as vk
from visionkit.export import ExportVerificationError

TOLERANCE = 1.0  # grey levels, max abs
SMALL_SIZE = (4, 6)  # the diagonal's probe: 4 * 6 * 3 + 1 = 73 echo outputs
FULL_SIZE = (8, 12)  # the full matrix's probe: 289 echo outputs <= 320 files

# One cell per format, every orientation and scale met at least once.
DIAGONAL = [("JPEG", 6, 5.0), ("PNG8", 3, 2.5), ("PNG16", 8, 9.0), ("gray", 2, 1.0),
            ("RGBA", 5, 2.5), ("palette", 7, 5.0), ("CMYK", 4, 9.0), ("WebP", 6, 2.5),
            ("BMP", 1, 5.0), ("GIF", 1, 9.0), ("JPEG", 8, 9.0), ("JPEG", 1, 1.0)]


def _files(chosen, image_size) -> dict[str, bytes]:
    return {file_name(*cell): encode_file(*cell, seed=index, image_size=image_size)
            for index, cell in enumerate(chosen) if skip_reason(cell[0], cell[1]) is None}


def _fillers(count: int, image_size) -> dict[str, bytes]:
    """Small extra class folders, so the echo model has enough outputs."""
    import io

    files = {}
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(np.full((*image_size, 3), index % 256, np.uint8)).save(buffer, "PNG")
        files[f"zz_filler_{index:03d}"] = buffer.getvalue()
    return files


def _run_option(work, files: dict[str, bytes], image_size, method: str,
                options: dict) -> dict[str, dict[str, np.ndarray]]:
    """Pixels per file name: training pipeline, serve_bytes, serving_default on arrays."""
    root = work / "images"
    if not root.exists():
        write_tree(str(root), files)
    label = f"{method}_" + "_".join(f"{k}-{v}" for k, v in sorted(options.items()))
    data = vk.data.image_folder(root, image_size=image_size, validation_split=0.0,
                                batch_size=len(files), interpolation=method,
                                preprocessing=options, seed=0)
    images, labels = next(iter(data.train))
    training = np.empty(np.shape(images), np.float32)
    training[np.asarray(labels)] = np.asarray(images)
    names = list(data.class_names)
    path = vk.export.saved_model(echo_model(len(names), image_size),
                                 work / "models" / label, data=data)
    loaded = tf.saved_model.load(path)
    encoded = tf.constant([files[name] for name in names])
    served = decode_echo(loaded.signatures["serve_bytes"](images=encoded)["probabilities"],
                         image_size)
    upright = options.get("orientation", "exif") == "exif"
    arrays = np.stack([decode_echo(loaded.signatures["serving_default"](
        images=tf.constant(reference_array(files[name], upright)[None]))["probabilities"],
        image_size)[0] for name in names])
    return {"path": path, "names": names,
            **{kind: dict(zip(names, values)) for kind, values in
               (("training", training), ("served", served), ("arrays", arrays))}}


def _check_cell(result: dict, cell, options: dict) -> None:
    file_format, orientation, scale = cell
    name = file_name(*cell)
    training = result["training"][name]
    served = result["served"][name]
    assert np.ptp(training) > 20, "a flat probe would hide mistakes"
    difference = np.abs(served - training).max()
    assert difference <= TOLERANCE, f"serve_bytes differs by {difference:.2f} on {name}"
    dct = options.get("dct_scaling", False) and file_format in ("JPEG", "CMYK") and scale >= 2
    if dct:
        pytest.skip(f"{name}: DCT-scaled decoding (dct_scaling=True) exists only for encoded "
                    "bytes; a full-resolution uint8 array cannot be decoded that way "
                    "(serve_bytes matched)")
    difference = np.abs(result["arrays"][name] - training).max()
    assert difference <= TOLERANCE, f"serving_default differs by {difference:.2f} on {name}"


# -- default run: a diagonal, one data set ------------------------------------------------
@pytest.fixture(scope="module")
def diagonal(tmp_path_factory):
    work = tmp_path_factory.mktemp("parity_diagonal")
    files = _files(DIAGONAL, SMALL_SIZE)
    needed = SMALL_SIZE[0] * SMALL_SIZE[1] * 3 + 1
    files.update(_fillers(needed - len(files), SMALL_SIZE))
    return _run_option(work, files, SMALL_SIZE, "bilinear", {})


@pytest.mark.parametrize("cell", DIAGONAL, ids=[file_name(*cell) for cell in DIAGONAL])
def test_diagonal_served_pixels_equal_training_pixels(diagonal, cell):
    _check_cell(diagonal, cell, {})


def test_diagonal_turns_images_upright_in_both_paths(diagonal):
    """An independent check of the turn: PIL's `exif_transpose` of the JPEG, resized."""
    name = file_name("JPEG", 6, 5.0)
    assert diagonal["training"][name].shape == (*SMALL_SIZE, 3)
    upright = reference_array(encode_file("JPEG", 6, 5.0, seed=0, image_size=SMALL_SIZE))
    assert upright.shape[:2] == (30, 20)  # stored 20x30, displayed 30x20
    expected = tf.image.resize(upright.astype(np.float32), SMALL_SIZE, antialias=True)
    assert np.abs(diagonal["served"][name] - np.asarray(expected)).max() <= TOLERANCE
    sideways = tf.image.resize(np.rot90(upright).astype(np.float32), SMALL_SIZE,
                               antialias=True)
    assert np.abs(diagonal["served"][name] - np.asarray(sideways)).max() > 20


def test_diagonal_predict_files_serves_the_same_pixels(diagonal, tmp_path):
    """`predict_files` (what `visionkit predict` runs) reads files into the same pixels."""
    names = [file_name(*cell) for cell in DIAGONAL[:4]]
    paths = []
    for index, name in enumerate(names):
        path = tmp_path / f"{index}_{name}"
        path.write_bytes(encode_file(*DIAGONAL[index], seed=index, image_size=SMALL_SIZE))
        paths.append(str(path))
    results = vk.export.predict_files(diagonal["path"], paths, top_k=len(diagonal["names"]))
    for name, result in zip(names, results):
        probabilities = np.zeros(len(diagonal["names"]))
        for entry in result["top"]:
            probabilities[entry["class_id"]] = entry["probability"]
        pixels = decode_echo(probabilities[None], SMALL_SIZE)[0]
        assert np.abs(pixels - diagonal["training"][name]).max() <= TOLERANCE, name


def test_metadata_records_the_preprocessing_block(diagonal):
    with open(os.path.join(diagonal["path"], "assets", "visionkit.json")) as file:
        block = json.load(file)["preprocessing"]
    assert block["source"] == "data" and block["orientation"] == "exif"
    assert block["resize"] == {"method": "bilinear", "antialias": True, "fit": "stretch",
                               "half_pixel_centers": True}
    assert block["image_size"] == list(SMALL_SIZE) and block["value_range"] == [0, 255]
    assert vk.export.load(diagonal["path"]).preprocessing == vk.data.Preprocessing(SMALL_SIZE)


def test_export_without_data_records_the_defaults(tmp_path):
    path = vk.export.saved_model(echo_model(73, SMALL_SIZE), tmp_path / "m",
                                 task="classification",
                                 class_names=[str(i) for i in range(73)])
    spec = vk.export.load(path).preprocessing
    assert spec.source == "defaults"
    assert spec.replace(source="data") == vk.data.Preprocessing(SMALL_SIZE)


# -- export refuses an injected mismatch --------------------------------------------------
@pytest.fixture(scope="module")
def first_version(tmp_path_factory):
    """A data set, a model and its version 1 (the one a failed export must not touch)."""
    work = tmp_path_factory.mktemp("refuse")
    write_tree(str(work / "images"), _files([("JPEG", 1, 1.0), ("PNG8", 1, 1.0)], SMALL_SIZE))
    data = vk.data.image_folder(work / "images", image_size=SMALL_SIZE, validation_split=0.0,
                                batch_size=2)
    model = vk.models.build("simple_cnn", input_shape=(*SMALL_SIZE, 3), num_classes=2,
                            filters=(4,))
    first = vk.export.saved_model(model, work / "models", data=data)
    return data, model, first


@pytest.mark.parametrize("injected, named", [
    ({"orientation": "stored"}, "On a JPEG with EXIF orientation 6"),
    ({"antialias": False}, "On a .* grey levels"),
])
def test_export_refuses_a_pixel_mismatch(first_version, monkeypatch, injected, named):
    from visionkit.export import exporter

    data, model, first = first_version
    models = os.path.dirname(first)
    before = hash_tree(first)
    original = exporter._serving_preprocessing
    monkeypatch.setattr(exporter, "_serving_preprocessing",
                        lambda *args: original(*args).replace(**injected))
    with pytest.raises(ExportVerificationError, match=named):
        vk.export.saved_model(model, models, data=data)
    assert sorted(os.listdir(models)) == ["1"]  # no version 2, no staging folder left
    assert hash_tree(first) == before


# -- the full matrix (slow) ---------------------------------------------------------------
OPTIONS = ([(method, {}) for method in METHODS]
           + [(method, {"dct_scaling": True}) for method in METHODS]
           + [("bilinear", {"antialias": False}), ("bilinear", {"orientation": "stored"})])
_FULL: dict = {}


@pytest.fixture(scope="module")
def full_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("parity_full")
    files = _files(cells(), FULL_SIZE)
    needed = FULL_SIZE[0] * FULL_SIZE[1] * 3 + 1
    files.update(_fillers(max(needed - len(files), 0), FULL_SIZE))
    return work, files


def _option_id(option) -> str:
    method, options = option
    return method + "".join(f"-{k}={v}" for k, v in sorted(options.items()))


@pytest.mark.slow
@pytest.mark.parametrize("cell", cells(), ids=[file_name(*cell) for cell in cells()])
@pytest.mark.parametrize("option", OPTIONS, ids=[_option_id(o) for o in OPTIONS])
def test_full_matrix(full_work, option, cell):
    reason = skip_reason(cell[0], cell[1])
    if reason is not None:
        pytest.skip(reason)
    work, files = full_work
    key = _option_id(option)
    if key not in _FULL:
        _FULL[key] = _run_option(work, files, FULL_SIZE, *option)
    _check_cell(_FULL[key], cell, option[1])


CHILD_SCRIPT = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
files = [open(path, "rb").read() for path in sys.argv[3:]]
out = loaded.signatures["serve_bytes"](images=tf.constant(files))
pixels = loaded.signatures["preprocess_bytes"](images=tf.constant(files))["images"]
np.savez(sys.argv[2], probabilities=out["probabilities"].numpy(), pixels=pixels.numpy())
assert "visionkit" not in sys.modules, "the SavedModel pulled visionkit in"
print("CHILD_OK")
"""


@pytest.mark.slow
def test_full_matrix_through_cli_and_a_process_without_visionkit(full_work, tmp_path):
    """`visionkit predict --json` and bare `tf.saved_model.load` see the training pixels."""
    work, files = full_work
    key = _option_id(("bilinear", {}))
    if key not in _FULL:
        _FULL[key] = _run_option(work, files, FULL_SIZE, "bilinear", {})
    result = _FULL[key]
    chosen = [file_name(f, o, s) for f, o, s in cells()
              if skip_reason(f, o) is None and o in (1, 6, 7) and s in (2.5, 9.0)]
    paths = []
    for name in chosen:
        path = tmp_path / (name + ".img")
        path.write_bytes(files[name])
        paths.append(str(path))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [sys.executable, "-m", "visionkit.cli", "predict", result["path"], *paths, "--json",
         "--top-k", str(len(result["names"]))],
        capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    predictions = json.loads(completed.stdout[completed.stdout.index("["):])
    for name, prediction in zip(chosen, predictions):
        probabilities = np.zeros(len(result["names"]))
        for entry in prediction["top"]:
            probabilities[entry["class_id"]] = entry["probability"]
        pixels = decode_echo(probabilities[None], FULL_SIZE)[0]
        assert np.abs(pixels - result["training"][name]).max() <= TOLERANCE, name

    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, str(script), result["path"], str(tmp_path / "out.npz"), *paths],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "CHILD_OK" in completed.stdout
    child = np.load(tmp_path / "out.npz")
    echoed = decode_echo(child["probabilities"], FULL_SIZE)
    for index, name in enumerate(chosen):
        assert np.abs(echoed[index] - result["training"][name]).max() <= TOLERANCE, name
        assert np.abs(child["pixels"][index] - result["training"][name]).max() <= TOLERANCE


def test_matrix_spans_what_the_issue_names():
    assert ORIENTATIONS == tuple(range(1, 9)) and SCALES == (1.0, 2.5, 5.0, 9.0)
    assert len(FORMATS) == 10 and set(METHODS) == set(vk.data.folder.INTERPOLATIONS)
