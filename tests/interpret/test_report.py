"""The HTML report and `visionkit explain`."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import visionkit as vk


def test_explain_writes_a_report_whose_pages_link_existing_pictures(tmp_path, repo_root):
    import keras

    from visionkit import cli

    keras.utils.set_random_seed(0)
    model = vk.models.build("simple_cnn", (32, 32, 3), 10, filters=(4, 8, 8))
    checkpoint = str(tmp_path / "model.keras")
    model.save(checkpoint)
    out = tmp_path / "report"
    status = cli.main(["explain", checkpoint, "--recipe",
                       os.path.join(repo_root, "pipelines", "digits_cnn.yaml"), "--smoke",
                       "--images", "2", "--out", str(out)])
    assert status == 0
    page = (out / "index.html").read_text()
    pictures = re.findall(r'src="([^"]+)"', page)
    assert {"overlays.png", "weights.png", "activations.png", "dream.png", "tsne.png",
            "filters_conv2.png", "filters_conv3.png"} <= set(pictures)
    for picture in pictures:
        assert (out / picture).stat().st_size > 1000
    assert "trustworthiness" in page.lower()


def test_explain_names_a_missing_checkpoint(tmp_path, repo_root, capsys):
    from visionkit import cli

    status = cli.main(["explain", str(tmp_path / "missing.keras"), "--recipe",
                       os.path.join(repo_root, "pipelines", "digits_cnn.yaml")])
    assert status == 2
    assert "missing.keras" in capsys.readouterr().err


def test_weights_tiles_are_the_first_kernels_rescaled(tiny_model):
    kernel = np.asarray(tiny_model.get_layer("conv1").kernel)  # [3, 3, 3, 4]
    tiles = vk.interpret.weights(tiny_model)
    first = kernel[..., 0]
    np.testing.assert_allclose(tiles[0], (first - first.min()) / (first.max() - first.min()),
                               atol=1e-6)


def test_activations_average_over_channels(tiny_model, tiny_images):
    full = vk.interpret.activations(tiny_model, tiny_images, ["conv2"])["conv2"]
    mean = vk.interpret.activations(tiny_model, tiny_images, "conv2", average=True)["conv2"]
    np.testing.assert_allclose(mean, full.mean(axis=-1), atol=1e-6)


@pytest.mark.heavy
def test_a_recipe_asks_for_the_report_after_training(tmp_path, repo_root):
    from visionkit.config import load_recipe, smoke_recipe
    from visionkit.run import run_recipe

    recipe = load_recipe(os.path.join(repo_root, "pipelines", "digits_cnn.yaml"),
                         ["model.args.filters=[4, 8]", "interpret.enabled=true",
                          "interpret.images=2", "interpret.filter_steps=2",
                          "interpret.dream_steps=1", "export.enabled=false"])
    result = run_recipe(smoke_recipe(recipe), run_dir=str(tmp_path / "run"))
    assert result["report_path"] == str(tmp_path / "run" / "report" / "index.html")
    assert (tmp_path / "run" / "report" / "tsne.png").exists()
