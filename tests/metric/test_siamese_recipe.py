"""The siamese recipe: schema errors, and `visionkit run --smoke` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from visionkit.config import RecipeError, load_recipe, parse_recipe
from visionkit.run import metric_loss_from_recipe
from visionkit.train.metric_losses import ContrastiveLoss, TripletLoss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "pipelines", "digits_siamese.yaml")
ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _raw(**changes):
    raw = {"name": "demo", "data": {"source": "digits"},
           "model": {"name": "siamese", "args": {"embedding_dim": 8}},
           "metric_learning": {"loss": "triplet"}}
    raw.update(changes)
    return raw


def test_the_section_chooses_the_loss():
    recipe = load_recipe(RECIPE)
    loss = metric_loss_from_recipe(recipe)
    assert isinstance(loss, TripletLoss) and (loss.mining, loss.margin) == ("batch_hard", 0.1)
    recipe = parse_recipe(_raw(metric_learning={"loss": "contrastive", "margin": 0.5}))
    loss = metric_loss_from_recipe(recipe)
    assert isinstance(loss, ContrastiveLoss) and loss.margin == 0.5
    assert metric_loss_from_recipe(parse_recipe(_raw(
        model={"name": "simple_cnn"}, metric_learning=None))) is None


def test_the_recipe_names_the_plain_flattened_network_without_projection():
    import visionkit as vk

    recipe = load_recipe(RECIPE)
    model = vk.models.build(recipe.model.name, input_shape=(*recipe.data.image_size, 3),
                            **recipe.model.args)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 4 and "BatchNormalization" not in kinds
    assert "Flatten" in kinds and "Dense" not in kinds
    assert model.output_shape == (None, 8 * 8 * 64)


def test_bad_sections_are_errors_naming_the_field():
    with pytest.raises(RecipeError, match="metric_learning.mining"):
        parse_recipe(_raw(metric_learning={"mining": "hardest"}))
    with pytest.raises(RecipeError, match="mining applies to the triplet loss"):
        parse_recipe(_raw(metric_learning={"loss": "contrastive", "mining": "semi_hard"}))
    with pytest.raises(RecipeError, match="classes_per_batch"):
        parse_recipe(_raw(metric_learning={"classes_per_batch": 1}))
    with pytest.raises(RecipeError, match="go together"):
        parse_recipe(_raw(metric_learning=None))
    with pytest.raises(RecipeError, match="go together"):
        parse_recipe(_raw(model={"name": "simple_cnn"}))


def _visionkit(*arguments):
    return subprocess.run([sys.executable, "-m", "visionkit.cli", *map(str, arguments)],
                          capture_output=True, text=True, env=ENVIRONMENT, timeout=900)


@pytest.mark.slow
def test_cli_runs_the_recipe_in_smoke_mode_and_predicts_embeddings(tmp_path):
    completed = _visionkit("run", RECIPE, "--smoke", "--run-dir", tmp_path / "run",
                           "--export-root", tmp_path / "saved_models")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "recall_at_1:" in completed.stdout and "verification_auc:" in completed.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["recall_at_1"] <= 1.0 and metrics["num_examples"] == 32
    image = tmp_path / "digit.png"
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(image)
    completed = _visionkit("predict", tmp_path / "saved_models" / "digits_siamese", image,
                           "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    embedding = np.array(json.loads(completed.stdout)[0]["embedding"])
    assert embedding.shape == (8 * 8 * 64,)  # the plain CNN's last map at 16x16, flattened
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
