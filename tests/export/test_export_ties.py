"""Max-unpooling ties: flat and saturated images give the same SegNet masks in every runtime.

Flat regions give equal activations inside a 2x2 pooling window. `MaxUnpooling2D` picks
the first maximum in row-major order through an equality mask and a cumulative sum
(ops LiteRT and ONNX Runtime share), not `tf.nn.max_pool_with_argmax`, whose tie-break
is the runtime's own; this checks that the exports keep the same switches.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.export.formats import keras_outputs
from visionkit.export.runtimes import PortablePredictor
from visionkit.vocabulary import get_task

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the export extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the export extra) is not installed")

SIZE = 32


def tie_heavy_images() -> np.ndarray:
    """uint8: flat black, grey, white and coloured images; noise with saturated halves
    and every other column at 255."""
    flat = np.zeros((4, SIZE, SIZE, 3), np.uint8)
    flat[1], flat[2], flat[3] = 128, 255, (30, 200, 90)
    saturated = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)).astype(np.uint8)
    saturated[:, :SIZE // 2] = 255
    saturated[:, SIZE // 2:, :SIZE // 2] = 0
    saturated[2:, :, ::2] = 255
    return np.concatenate([flat, saturated])


@pytest.mark.slow
def test_tie_heavy_images_give_identical_masks_in_keras_litert_and_onnx(tmp_path):
    keras.utils.set_random_seed(0)
    model = vk.models.build("segnet", input_shape=(SIZE, SIZE, 3), num_classes=3,
                            width_multiplier=0.0625)
    images = tie_heavy_images()
    # The input really is tie-heavy: many windows of the first pooling tie exactly.
    features = keras.Model(model.input, model.get_layer("decoder1_unpool").input[1])(
        images.astype(np.float32))
    windows = np.sort(np.asarray(features).reshape(8, SIZE // 2, 2, SIZE // 2, 2, -1)
                      .transpose(0, 1, 3, 5, 2, 4).reshape(8, SIZE // 2, SIZE // 2, -1, 4), -1)
    assert np.sum((windows[..., -1] == windows[..., -2]) & (windows[..., -1] > 0)) > 500
    expected = keras_outputs(model, get_task("segmentation"), images, None)
    for export in (vk.export.litert, vk.export.onnx):
        path = export(model, tmp_path / export.__name__, task="segmentation",
                      class_names=["a", "b", "c"], verify=False)
        served = PortablePredictor(path)(images)
        np.testing.assert_array_equal(served["mask"], expected["mask"])
        assert np.max(np.abs(served["probabilities"] - expected["probabilities"])) <= 1e-4
