"""Versioned, atomic exports: new versions never touch old ones; failures leave nothing."""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, IMAGE_SIZE, hash_tree

import visionkit as vk
from visionkit.export import exporter, verify


@pytest.fixture
def root_with_v1(tmp_path, exported):
    """A model root holding a copy of the session's version 1, and that copy's hashes."""
    root = tmp_path / "tiny_cnn"
    shutil.copytree(exported, root / "1")
    return str(root), hash_tree(str(root / "1"))


def _export(model, root, **kwargs):
    return vk.export.saved_model(model, root, task="classification", class_names=CLASS_NAMES,
                                 **kwargs)


def test_second_export_is_version_2_and_leaves_version_1_untouched(root_with_v1, tiny_model,
                                                                   tiny_data):
    root, hashes = root_with_v1
    # Versioning is under test; the verification (test_failed_verification_...) is not.
    path = vk.export.saved_model(tiny_model, root, data=tiny_data, verify=False)
    assert path == os.path.join(root, "2")
    assert sorted(os.listdir(root)) == ["1", "2"]  # no staging folder left behind
    assert hash_tree(os.path.join(root, "1")) == hashes
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert vk.export.load(path).metadata["version"] == 2
    # Same permissions as any new folder (a server running as another user can read it).
    os.mkdir(os.path.join(root, "reference"))
    assert os.stat(path).st_mode == os.stat(os.path.join(root, "reference")).st_mode


def test_explicit_version_and_refusal_to_overwrite(root_with_v1, tiny_model):
    root, hashes = root_with_v1
    # Numbering is under test, not the comparison (see test_verify_false_skips_...).
    assert _export(tiny_model, root, version=9, verify=False) == os.path.join(root, "9")
    assert _export(tiny_model, root, verify=False) == os.path.join(root, "10")  # numeric max
    before = hash_tree(os.path.join(root, "9"))
    with pytest.raises(FileExistsError, match="Version 9 already exists"):
        _export(tiny_model, root, version=9)
    assert hash_tree(os.path.join(root, "9")) == before
    assert hash_tree(os.path.join(root, "1")) == hashes
    assert sorted(os.listdir(root), key=int) == ["1", "9", "10"]


@pytest.mark.parametrize("version", [-1, 1.5, "3", True])
def test_invalid_version_is_rejected(tmp_path, tiny_model, version):
    with pytest.raises(ValueError, match="non-negative integer"):
        _export(tiny_model, tmp_path / "root", version=version)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_while_saving_leaves_no_trace(root_with_v1, tiny_model, monkeypatch, error):
    root, hashes = root_with_v1
    real_save = exporter._save

    def save_then_fail(module, directory):
        real_save(module, directory)  # a complete SavedModel is on disk ...
        with open(os.path.join(directory, "variables", "partial"), "wb") as file:
            file.write(b"\0" * 1024)
        raise error  # ... but the process fails before publishing it

    monkeypatch.setattr(exporter, "_save", save_then_fail)
    with pytest.raises(type(error)):
        _export(tiny_model, root)
    assert os.listdir(root) == ["1"]
    assert hash_tree(os.path.join(root, "1")) == hashes
    assert vk.export.load(root).version == 1


def test_failed_verification_leaves_no_trace(root_with_v1, tiny_model, monkeypatch):
    root, hashes = root_with_v1
    real_reference = verify.reference_outputs

    def off_by_a_little(*args, **kwargs):
        outputs = real_reference(*args, **kwargs)
        outputs["probabilities"] = outputs["probabilities"] + 1e-3
        return outputs

    monkeypatch.setattr(verify, "reference_outputs", off_by_a_little)
    with pytest.raises(vk.export.ExportVerificationError, match="probabilities"):
        _export(tiny_model, root)
    assert os.listdir(root) == ["1"]
    assert hash_tree(os.path.join(root, "1")) == hashes


def test_verify_false_skips_the_comparison(tmp_path, tiny_model, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("verification ran")

    monkeypatch.setattr(verify, "verify_saved_model", fail)
    path = _export(tiny_model, tmp_path / "root", verify=False)
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    with pytest.raises(AssertionError, match="verification ran"):
        _export(tiny_model, tmp_path / "root")


class EagerOnly(keras.layers.Layer):
    """Works when called eagerly; cannot be traced into a graph (calls `.numpy()`)."""

    def call(self, inputs):
        return tf.convert_to_tensor(inputs.numpy())

    def compute_output_shape(self, input_shape):
        return input_shape


def test_model_that_cannot_be_traced_leaves_no_trace(root_with_v1):
    root, hashes = root_with_v1
    inputs = keras.Input((*IMAGE_SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(EagerOnly()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(len(CLASS_NAMES))(features))
    model(np.zeros((1, *IMAGE_SIZE, 3), np.float32))  # eager calls work
    with pytest.raises(AttributeError, match="numpy"):
        _export(model, root)
    assert os.listdir(root) == ["1"]
    assert hash_tree(os.path.join(root, "1")) == hashes


def test_versions_helpers(tmp_path):
    for name in ("2", "10", ".visionkit-export-abc", "notes", "007"):
        (tmp_path / name).mkdir()
    (tmp_path / "11").write_text("a file, not a version")
    assert vk.export.list_versions(tmp_path) == [2, 7, 10]
    assert vk.export.next_version(tmp_path) == 11
    assert vk.export.next_version(tmp_path / "missing") == 1
