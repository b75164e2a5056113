"""Multi-label CSVs as pandas and Excel write them, and arrays prepared for other tools."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.testing import write_images


@pytest.mark.parametrize("labels", ['"cat,dog"', '"cat, dog"'])
def test_quoted_comma_separated_labels_are_two_classes(tmp_path, labels):
    # pandas' to_csv of a column of "cat,dog" strings quotes them; Excel adds a BOM.
    write_images(tmp_path, {f"{index}.png": (12, 10) for index in range(3)})
    rows = ["file,labels", f"0.png,{labels}", "1.png,dog", "2.png,cat"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    data = vk.data.multilabel_csv(tmp_path / "labels.csv", image_size=(8, 8),
                                  validation_split=0.0, batch_size=3, seed=None)
    assert data.class_names == ("cat", "dog")
    _, targets = next(iter(data.train))
    rows_seen = sorted(tuple(row) for row in targets.numpy().astype(int).tolist())
    assert rows_seen == [(0, 1), (1, 0), (1, 1)]


def test_a_file_on_two_lines_is_said(tmp_path):
    write_images(tmp_path, {"0.png": (12, 10), "1.png": (12, 10)})
    (tmp_path / "labels.csv").write_text("0.png,cat\n1.png,dog\n./0.png,dog\n")
    with pytest.warns(vk.errors.DataWarning, match=r"1 file\(s\) are named on more than "
                                                   r"one line \(e\.g\. '0\.png' on lines "
                                                   r"\[1, 3\]\)"):
        data = vk.data.multilabel_csv(tmp_path / "labels.csv", image_size=(8, 8),
                                      validation_split=0.0)
    assert data.train_size == 3


def test_scaled_images_in_label_lists_are_refused():
    with pytest.raises(ValueError, match=r"look scaled to 0\.\.1"):
        vk.data.multilabel_from_lists(np.full((2, 4, 4, 3), 0.5), [["cat"], ["dog"]])
