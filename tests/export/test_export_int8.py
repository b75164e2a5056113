"""int8 LiteRT exports: calibrated int8 layers, post-processing in float32, parity checked."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.export.formats import INT8_FLOAT_OPS

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the export extra) is not installed")


def _uncertain_classifier(shape) -> keras.Model:
    """Logits 0.1 x the mean colour (0..1) per channel: the dominant channel wins, by a
    softmax margin below 1/256 (an int8 softmax step) when channels differ by 8 levels."""
    inputs = keras.Input(shape)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    dense = keras.layers.Dense(3, activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(x))
    dense.kernel.assign(0.1 * np.eye(3, dtype="float32"))
    return model


def _colour_images(count: int, size) -> np.ndarray:
    """Flat images whose three channels are a grey level plus 0, 8 and 16 (shuffled)."""
    rng = np.random.default_rng(2)
    colours = np.stack([rng.integers(0, 230) + rng.permutation([0, 8, 16])
                        for _ in range(count)])
    return np.broadcast_to(colours[:, None, None, :], (count, *size, 3)).astype(np.uint8)


@pytest.mark.heavy
def test_int8_keeps_softmax_and_argmax_float_and_agrees_on_top1(tmp_path):
    model = _uncertain_classifier((16, 24, 3))
    images = _colour_images(60, (16, 24))
    probabilities = model.predict(images.astype(np.float32), verbose=0)
    ranked = np.sort(probabilities, axis=-1)
    assert np.mean(ranked[:, -1] - ranked[:, -2] < 1 / 256) == 1.0  # int8 softmax would tie
    assert len(np.unique(np.argmax(probabilities, axis=-1))) == 3

    data = vk.data.from_arrays(images, np.zeros(60, int), class_names=["r", "g", "b"],
                               validation_split=0.25, batch_size=8)
    path = vk.export.litert(model, tmp_path, data=data, quantize="int8")
    metadata = json.load(open(os.path.join(path, "visionkit.json")))
    assert metadata["representative_dataset"] == {"source": "data.train_examples",
                                                  "count": 100, "seed": 0}
    assert metadata["parity"]["images"] == 15  # every validation image
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.path.join(path, "model.tflite"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    operations = interpreter._get_ops_details()
    names = [op["op_name"] for op in operations]
    assert "FULLY_CONNECTED" in names and "SOFTMAX" in names
    for op in operations:
        dtype = tensors[op["inputs"][0]]["dtype"]
        if op["op_name"] == "FULLY_CONNECTED":
            assert dtype == np.int8  # the model's layers are int8
        if op["op_name"] in INT8_FLOAT_OPS:
            assert dtype == np.float32, op["op_name"]

    report = vk.export.check(path, model=model, images=images)
    assert report["passed"], report["failures"]
    assert report["top1_agreement"] >= 0.98
    served = vk.export.load(path)(images)
    assert np.array_equal(served["class_id"], np.argmax(probabilities, axis=-1))
