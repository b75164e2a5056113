"""Every recipe in pipelines/ runs end to end in smoke mode."""

from __future__ import annotations

import glob
import json
import os

import pytest

from visionkit.config import load_recipe, smoke_recipe
from visionkit.run import data_from_recipe, run_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The quickstart runs through the CLI in test_cli.py.
RECIPES = sorted(p for p in glob.glob(os.path.join(ROOT, "pipelines", "*.yaml"))
                 if not p.endswith("digits_cnn.yaml"))


@pytest.mark.heavy
@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_recipe_runs_in_smoke_mode(path, tmp_path):
    recipe = smoke_recipe(load_recipe(path))
    result = run_recipe(recipe, run_dir=str(tmp_path / "run"),
                        export_root=str(tmp_path / "saved_models"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_examples"] == data_from_recipe(recipe).val_size
    assert metrics["num_examples"] <= recipe.limit[1]
    assert os.path.exists(os.path.join(result["export_path"], "saved_model.pb"))
    assert os.path.basename(result["export_path"]) == "1"
