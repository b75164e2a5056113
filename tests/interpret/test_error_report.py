"""The report's error analysis, and the whole report opened in headless Chromium."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import visionkit as vk
from tests.interpret.chromium_check import check_page, find_chromium, problems
from visionkit.interpret.error_analysis import cell_page_name, error_analysis


class _Comparison:
    """Stands in for `compare`'s result: only `.to_html()` is used by the report."""

    rows = [{"method": "grad_cam", "metric": "deletion_auc", "value": 0.25, "n_images": 4}]

    def to_html(self):
        return ("<table class='comparison'><tr><th>method</th><th>deletion AUC</th></tr>"
                "<tr><td>grad_cam</td><td>0.250</td></tr></table>")


@pytest.fixture(scope="module")
def small_digits():
    import keras

    keras.utils.set_random_seed(0)
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(32, 40)
    model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
    return model, data


@pytest.fixture(scope="module")
def report_dir(small_digits, tmp_path_factory):
    model, data = small_digits
    out = tmp_path_factory.mktemp("report")
    vk.interpret.report(model, data, out, images=2, filter_steps=2, dream_steps=1,
                        progress=False, comparison=_Comparison(), per_cell=3)
    return out


def test_confusion_cells_count_every_image_and_link_its_page(small_digits, tmp_path):
    model, data = small_digits
    analysis = error_analysis(model, data, tmp_path, per_cell=2)
    images = np.concatenate([np.asarray(x) for x, _ in data.val])
    labels = np.concatenate([np.asarray(y) for _, y in data.val])
    predicted = np.asarray(model(images)).argmax(-1)
    # Independent count, cell by cell.
    for true in range(10):
        for pred in range(10):
            count = int(((labels == true) & (predicted == pred)).sum())
            assert analysis.matrix[true, pred] == count
            assert ((true, pred) in analysis.cell_pages) == (count > 0)
    links = re.findall(r'href="([^"]+)"', analysis.html)
    assert sorted(links) == sorted(analysis.cell_pages.values())
    true, pred = next(iter(analysis.cell_pages))
    page = (tmp_path / cell_page_name(true, pred)).read_text()
    assert f"{analysis.matrix[true, pred]} validation image(s)" in page
    assert (tmp_path / "cells" / f"true_{true}_pred_{pred}.png").stat().st_size > 1000


def test_the_report_page_has_the_matrix_the_marked_tsne_and_the_comparison(report_dir):
    page = (report_dir / "index.html").read_text()
    assert "Where the model is wrong" in page and "class='comparison'" in page
    assert "misclassified images" in page
    for link in re.findall(r'(?:href|src)="([^"]+)"', page):
        assert not os.path.isabs(link) and (report_dir / link).exists(), link


def test_the_report_refuses_a_comparison_without_to_html(small_digits, tmp_path):
    model, data = small_digits
    with pytest.raises(TypeError, match="to_html"):
        vk.interpret.report(model, data, tmp_path, images=2, filter_steps=1, dream_steps=1,
                            progress=False, comparison={"rows": []})


def test_error_analysis_names_a_segmentation_set(tiny_model, tmp_path):
    data = vk.data.shapes("segmentation", n=8, image_size=(24, 32), seed=0)
    with pytest.raises(ValueError, match="classification"):
        error_analysis(tiny_model, data, tmp_path)


_CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    _CHROMIUM is None, reason="no Chromium found (looked for /usr/bin/chromium, chromium, "
    "chromium-browser, google-chrome); .ci/run installs Debian's chromium")


@needs_chromium
def test_the_report_opens_in_chromium_with_every_image_and_link(report_dir, tmp_path):
    result = check_page(str(report_dir / "index.html"), str(tmp_path / "shot.png"), _CHROMIUM)
    assert problems(result) == []
    cell_pages = list((report_dir / "cells").glob("*.html"))
    # The report, every cell page reached through its link, and nothing else.
    assert len(result["pages"]) == 1 + len(cell_pages)
    images = sum(len(p["images"]) for p in result["pages"].values())
    assert images >= 6 + len(cell_pages)
    assert os.path.getsize(result["screenshot"]) > 10_000


@needs_chromium
def test_the_chromium_check_fails_on_a_broken_image_and_a_dead_link(report_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(report_dir, broken)
    cell_png = sorted((broken / "cells").glob("*.png"))[0]
    cell_png.write_bytes(b"this is not a PNG")  # no longer decodes
    os.remove(sorted((broken / "cells").glob("*.html"))[-1])
    found = problems(check_page(str(broken / "index.html"), str(tmp_path / "shot.png"),
                                _CHROMIUM))
    assert any(cell_png.name in p and p.startswith("broken image") for p in found), found
    assert any(p.startswith("page did not load") for p in found), found
