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
    # 45 training images, fewer than the 100 asked for: the count recorded is the one used.
    with pytest.warns(UserWarning, match="uses 45 training images.*representative_count=100"):
        path = vk.export.litert(model, tmp_path, data=data, quantize="int8")
    metadata = json.load(open(os.path.join(path, "visionkit.json")))
    assert metadata["representative_dataset"] == {"source": "data.train_examples",
                                                  "count": 45, "seed": 0, "requested": 100}
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


def _shared_scale_classifier(shape) -> keras.Model:
    """Class logits 0.5 x the mean colour (0..0.5) concatenated with an offset of 100 (a
    detector head's box distances beside its class logits), then sliced back out.

    int8 gives a concatenation one scale for all its inputs: 100 / 255 = 0.39 per step,
    coarser than the logits' differences, so fully int8 the classes collapse.
    """
    inputs = keras.Input(shape)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    logits = keras.layers.Dense(3, name="logits")
    offset = keras.layers.Dense(1, name="offset")
    joined = keras.layers.Concatenate(name="head")([logits(x), offset(x)])
    taken = keras.layers.Lambda(lambda t: t[:, :3], name="take")(joined)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(taken))
    logits.kernel.assign(0.5 * np.eye(3, dtype="float32"))
    offset.kernel.assign(np.zeros((3, 1), "float32"))
    offset.bias.assign(np.full((1,), 100.0, "float32"))
    return model


def test_int8_keeps_a_scale_sharing_concatenation_float_and_says_so(tmp_path):
    images = np.ascontiguousarray(_colour_images(40, (8, 8)))
    model = _shared_scale_classifier((8, 8, 3))
    logits = np.mean(images, axis=(1, 2)) / 255 * 0.5
    ranked = np.sort(logits, axis=-1)
    # Every image's top two logits differ by less than one step of the shared scale.
    assert np.all(ranked[:, -1] - ranked[:, -2] < 100 / 255)
    data = vk.data.from_arrays(images, np.zeros(40, int), class_names=["r", "g", "b"],
                               validation_split=0.25, batch_size=8)
    with pytest.warns(UserWarning, match=r"int8 litert export .* keeps 4 of \d+ int8 "
                                         r"tensors in float32.*head") as caught:
        path = vk.export.litert(model, tmp_path, data=data, quantize="int8")
    assert len([w for w in caught if "in float32" in str(w.message)]) == 1
    metadata = json.load(open(os.path.join(path, "visionkit.json")))
    assert {"logits", "offset", "head", "take"} <= set(metadata["float_layers"])
    assert metadata["float_tensors"] == 4
    assert metadata["parity"]["top1_agreement"] == 1.0

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=open(os.path.join(path, "model.tflite"),
                                                 "rb").read())
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    dtypes = {op["op_name"]: tensors[op["outputs"][0]]["dtype"]
              for op in interpreter._get_ops_details()}
    assert dtypes["CONCATENATION"] == np.float32
    assert dtypes["MEAN"] == np.int8  # the rest stays int8
    served = vk.export.load(path)(images)
    assert np.array_equal(served["class_id"], np.argmax(logits, axis=-1))


def test_int8_that_float_ops_cannot_save_is_refused_naming_layers(tmp_path):
    # The class is the channel with the most pixels one grey level brighter: mean colours
    # differ by 1/64 of a grey level, below any int8 step of a 0..1 mean (1/255 of it),
    # whichever single op stays float.
    rng = np.random.default_rng(3)
    images = np.full((40, 8, 8, 3), 100, np.uint8)
    winners = rng.integers(0, 3, 40)
    for image, winner in zip(images, winners):
        for channel in range(3):
            count = 10 + (1 if channel == winner else 0)
            image[..., channel].flat[rng.choice(64, count, replace=False)] += 1
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    dense = keras.layers.Dense(3, activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(x))
    dense.kernel.assign(1000 * np.eye(3, dtype="float32"))
    assert np.array_equal(np.argmax(model.predict(images.astype("float32"), verbose=0), -1),
                          winners)
    data = vk.data.from_arrays(images, winners, class_names=["r", "g", "b"],
                               validation_split=0.25, batch_size=8)
    with pytest.raises(vk.export.ExportVerificationError) as caught:
        vk.export.litert(model, tmp_path, data=data, quantize="int8")
    message = str(caught.value)
    assert "top1_agreement = " in message and "Nothing was written" in message
    assert "ranked int8 ops in float32 did not restore parity either" in message
    assert " in layer 'predictions'" in message or " in layer 'global_average" in message
    assert not [entry for entry in os.listdir(tmp_path) if entry.isdigit()]


@pytest.mark.parametrize("count", [0, -1, 2.5, "100", True])
def test_int8_refuses_a_calibration_count_that_is_not_a_whole_number(tmp_path, count):
    # -1 used to calibrate on every training image (tf.data's take(-1)) and 0 to fail
    # with "the data's training split is empty".
    images = _colour_images(8, (8, 8))
    data = vk.data.from_arrays(images, np.zeros(8, int), class_names=["r", "g", "b"],
                               validation_split=0.25, batch_size=4)
    with pytest.raises(ValueError, match=r"representative_count to be a whole number .*"
                                         rf"received representative_count={count!r}"):
        vk.export.litert(_uncertain_classifier((8, 8, 3)), tmp_path, data=data,
                         quantize="int8", representative_count=count)
    assert not os.listdir(tmp_path)
