"""The `visionkit` command, through a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

# Every test here starts `visionkit` in a fresh process: run by `make test-heavy`.
pytestmark = pytest.mark.heavy

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def visionkit(*arguments, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "visionkit.cli", *map(str, arguments)],
                          capture_output=True, text=True, env=ENVIRONMENT, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, repo_root):
    """`visionkit run pipelines/digits_cnn.yaml --smoke` into a temporary folder."""
    folder = tmp_path_factory.mktemp("cli")
    completed = visionkit("run", os.path.join(repo_root, "pipelines", "digits_cnn.yaml"),
                          "--smoke", "--run-dir", folder / "run", "--export-root",
                          folder / "saved_models")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder, completed


def test_run_smoke_trains_and_exports(smoke_run):
    folder, completed = smoke_run
    assert "accuracy:" in completed.stdout
    assert (folder / "run" / "history.csv").exists()
    assert (folder / "run" / "curves.png").exists()
    assert (folder / "run" / "confusion_matrix.png").exists()
    assert (folder / "run" / "recipe.yaml").exists()
    assert (folder / "saved_models" / "digits_cnn" / "1" / "saved_model.pb").exists()
    assert "saved_models/digits_cnn/1" in completed.stdout.replace(os.sep, "/")


def test_predict_prints_the_top_classes(smoke_run, tmp_path):
    folder, _ = smoke_run
    image = tmp_path / "digit.png"
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(image)
    completed = visionkit("predict", folder / "saved_models" / "digits_cnn", image,
                          "--top-k", "2", "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert len(result) == 1 and len(result[0]["top"]) == 2
    assert result[0]["top"][0]["class_name"] in [str(i) for i in range(10)]
    probabilities = [entry["probability"] for entry in result[0]["top"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_evaluate_and_export_a_checkpoint(smoke_run, repo_root):
    folder, _ = smoke_run
    checkpoint = folder / "run" / "checkpoints" / "best.keras"
    recipe = os.path.join(repo_root, "pipelines", "digits_cnn.yaml")
    completed = visionkit("evaluate", checkpoint, "--recipe", recipe, "--smoke")
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(completed.stdout)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["num_examples"] == 32
    completed = visionkit("export", checkpoint, "--recipe", recipe, "--smoke",
                          "--root", folder / "saved_models")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert (folder / "saved_models" / "digits_cnn" / "2" / "saved_model.pb").exists()
    assert (folder / "saved_models" / "digits_cnn" / "1" / "saved_model.pb").exists()


def test_a_run_directory_stands_for_its_best_checkpoint_and_recipe(smoke_run, repo_root):
    """`evaluate RUN_DIR` equals `evaluate RUN_DIR/checkpoints/best.keras --recipe ...`."""
    folder, _ = smoke_run
    run_dir = folder / "run"
    by_directory = visionkit("evaluate", run_dir, "--smoke")
    assert by_directory.returncode == 0, by_directory.stderr[-2000:]
    by_files = visionkit("evaluate", run_dir / "checkpoints" / "best.keras", "--recipe",
                         run_dir / "recipe.yaml", "--smoke")
    assert by_files.returncode == 0, by_files.stderr[-2000:]
    assert json.loads(by_directory.stdout) == json.loads(by_files.stdout)


def test_a_model_file_without_a_recipe_and_a_folder_that_is_no_run_are_named(tmp_path):
    completed = visionkit("evaluate", tmp_path / "model.keras")
    assert completed.returncode == 2 and "--recipe" in completed.stderr
    completed = visionkit("explain", tmp_path)
    assert completed.returncode == 2
    assert "best.keras" in completed.stderr and str(tmp_path) in completed.stderr


def test_models_lists_the_registry():
    completed = visionkit("models", "--task", "classification")
    assert completed.returncode == 0
    names = [line.split()[0] for line in completed.stdout.splitlines()]
    assert {"simple_cnn", "resnet50", "vgg16", "squeezenet"} <= set(names)


def test_bad_recipes_exit_2_naming_the_field(tmp_path, repo_root):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndata: {source: digits}\nmodel: {name: simple_cnn}\n"
                   "train: {epoch: 3}\n")
    completed = visionkit("run", bad)
    assert completed.returncode == 2
    assert "train.epoch" in completed.stderr and "epochs" in completed.stderr
    completed = visionkit("run", os.path.join(repo_root, "pipelines", "digits_cnn.yaml"),
                          "--set", "model.name=resnet81")
    assert completed.returncode == 2
    assert "resnet81" in completed.stderr and "resnet18" in completed.stderr
    completed = visionkit("predict", tmp_path / "nowhere", bad)
    assert completed.returncode == 2 and "nowhere" in completed.stderr
