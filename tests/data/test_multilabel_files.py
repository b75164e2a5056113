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


def test_resized_label_lists_get_the_pixels_an_export_serves():
    # Downscaling 32 -> 8: tf.image.resize without antialiasing keeps 1 pixel in 4;
    # the served signature (Preprocessing) antialiases, and training must match it.
    import tensorflow as tf

    from visionkit.data.preprocessing import Preprocessing

    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    data = vk.data.multilabel_from_lists(images, [["cat"], ["dog"]], image_size=(8, 8),
                                         validation_split=0.0, seed=None, batch_size=2)
    batch, labels = next(iter(data.train))  # shuffled: image i is the one labelled i
    trained = batch.numpy()[np.argsort(np.argmax(labels.numpy(), axis=1))]
    served = Preprocessing((8, 8)).resize(tf.constant(images)).numpy()
    naive = tf.image.resize(tf.cast(images, tf.float32), (8, 8)).numpy()
    assert np.abs(served - naive).max() > 10  # the two resizes differ here
    np.testing.assert_allclose(trained, served, atol=1e-4)
