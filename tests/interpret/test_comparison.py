"""`compare`: the table of methods against metrics, its rows, HTML and plot."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret import metrics


def test_compare_rows_equal_the_metrics_called_directly(tiny_model, tiny_images, tmp_path,
                                                        capsys):
    masks = np.zeros(tiny_images.shape[:3], bool)
    masks[:, 4:12, 8:20] = True
    result = vk.interpret.compare(
        tiny_model, tiny_images, methods=["grad_cam", "edges", ("ones", lambda m, x, **_:
                                                                  np.ones(x.shape[:3]))],
        metrics=["deletion", "sparseness", "pointing_game"], masks=masks, steps=3,
        fill="constant", path=tmp_path / "comparison.png")
    assert [(r["method"], r["metric"]) for r in result.rows][:3] == [
        ("grad_cam", "deletion"), ("grad_cam", "sparseness"), ("grad_cam", "pointing_game")]
    assert all(set(r) == {"method", "metric", "value", "n_images"} and r["n_images"] == 3
               for r in result.rows)
    predicted = np.asarray(tiny_model(tiny_images)).argmax(axis=1)
    cam = vk.interpret.grad_cam(tiny_model, tiny_images, target=predicted)
    np.testing.assert_allclose(result.maps["grad_cam"], cam, atol=1e-6)
    expected = metrics.deletion(tiny_model, tiny_images, cam, target=predicted, steps=3,
                                fill="constant").auc.mean()
    assert result.value("grad_cam", "deletion") == pytest.approx(expected, abs=1e-6)
    edges = metrics.edge_map(tiny_images)
    assert result.value("edges", "sparseness") == pytest.approx(
        metrics.sparseness(edges).mean(), abs=1e-6)
    assert result.value("ones", "sparseness") == pytest.approx(0.0, abs=1e-9)
    assert result.value("edges", "pointing_game") == pytest.approx(
        metrics.pointing_game(edges, masks).mean())
    assert "constant 0" in result.notes["deletion"]
    printed = capsys.readouterr().out
    assert "grad_cam" in printed and "deletion" in printed and "constant 0" in printed
    fragment = result.to_html()
    assert fragment.startswith('<table class="comparison">') and fragment.count("<tr>") == 4
    assert f"{result.value('edges', 'deletion'):.4f}" in fragment
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_escapes_method_names(tiny_model, tiny_images):
    result = vk.interpret.compare(tiny_model, tiny_images[:1],
                                  methods=[("<b>x</b>", lambda m, x, **_: np.ones(x.shape[:3]))],
                                  metrics=["sparseness"], verbose=0)
    assert "<b>x</b>" not in result.to_html() and "&lt;b&gt;" in result.to_html()


def test_bad_methods_and_metrics_are_named(tiny_model, tiny_images):
    for kwargs, argument in [({"methods": ["nope"]}, "methods"),
                             ({"methods": []}, "methods"),
                             ({"metrics": ["auc"]}, "metrics"),
                             ({"metrics": ["pointing_game"]}, "masks"),
                             ({"methods": [("bad", lambda m, x, **_: np.ones((2, 2)))],
                               "metrics": ["sparseness"]}, "methods")]:
        with pytest.raises(vk.interpret.ArgumentError) as error:
            vk.interpret.compare(tiny_model, tiny_images, verbose=0, **kwargs)
        assert error.value.argument == argument
