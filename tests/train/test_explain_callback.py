"""`fit(..., explain_every=N)`: Grad-CAM overlays in TensorBoard every N epochs."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import visionkit as vk
from visionkit.train.explain_callback import ExplainCallback, explain_images, overlay_heatmaps


def _logged_images(folder):
    import tensorflow as tf

    logged = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "grad_cam":
                    tensor = tf.make_ndarray(value.tensor)  # [width, height, png...]
                    logged[event.step] = np.stack([tf.io.decode_png(png).numpy()
                                                   for png in tensor[2:]])
    return logged


def test_fit_logs_grad_cam_overlays_every_n_epochs(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(32, 16)
    model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
    vk.train.fit(model, data, epochs=3, run_dir=tmp_path / "run", explain_every=3,
                 restore_best=False, verbose=0, plots=False, evaluate=False)
    logged = _logged_images(tmp_path / "run" / "tensorboard" / "explain")
    assert sorted(logged) == [3]  # epochs 1 and 2 are not multiples of 3
    images = explain_images(data)
    np.testing.assert_array_equal(images, np.concatenate([x for x, _ in data.val])[:4])
    # The logged epoch is the trained model's last: the PNGs hold exactly its overlays.
    expected = overlay_heatmaps(images, vk.interpret.grad_cam(model, images))
    assert np.abs(logged[3].astype(int) - expected.astype(int)).max() <= 1


def test_overlay_blends_the_jet_colour_of_the_map_by_hand():
    image = np.full((1, 2, 2, 3), 100.0)
    maps = np.array([[[0.0, 1.0], [0.5, 0.0]]])
    blended = overlay_heatmaps(image, maps)
    # jet(0) = dark blue (0, 0, 0.5), jet(1) = dark red (0.5, 0, 0), jet(0.5) ~ green.
    np.testing.assert_array_equal(blended[0, 0, 0], np.round([50, 50, 50 + 0.5 * 127.5]))
    np.testing.assert_array_equal(blended[0, 0, 1], np.round([50 + 0.5 * 127.5, 50, 50]))
    assert blended[0, 1, 0, 1] > 150


def test_explain_every_needs_a_run_dir_and_a_positive_integer():
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(16, 16)
    model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
    with pytest.raises(ValueError, match="run_dir"):
        vk.train.fit(model, data, epochs=1, explain_every=1, verbose=0)
    with pytest.raises(ValueError, match="explain_every=0"):
        ExplainCallback(np.zeros((1, 16, 16, 3)), "unused", every=0,
                        explain=vk.interpret.grad_cam)
