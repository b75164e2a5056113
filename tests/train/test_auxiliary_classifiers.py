"""vk.train.fit trains GoogLeNet's auxiliary classifiers (loss weight 0.3, Szegedy et al.
2015) and the export serves the main head alone."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.train.auxiliary import MainHeadLogs, labels_for_every_output, main_head


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = vk.data.digits(image_size=(32, 32), batch_size=8, seed=0).take(32, 16)
    run = vk.train.fit("googlenet", data, epochs=1, verbose=0, seed=0, plots=False,
                       run_dir=tmp_path_factory.mktemp("run") / "googlenet",
                       model_kwargs={"auxiliary_classifiers": True,
                                     "width_multiplier": 0.125})
    return data, run


@pytest.mark.slow  # GoogLeNet traces for 30-60 s on 2 cores
def test_fit_trains_every_head_with_the_papers_loss_weights(trained):
    _, run = trained
    # The auxiliary heads were part of training, each with its own loss.
    assert sorted(run.model.output) == ["aux1", "aux2", "predictions"]
    history = run.history
    for key in ("aux1_loss", "aux2_loss", "predictions_loss", "val_aux1_loss"):
        assert key in history and np.isfinite(history[key][0]), key
    # Keras's total is 1 x main + 0.3 x each auxiliary loss (the paper's weights).
    for prefix in ("", "val_"):
        total = history[f"{prefix}loss"][0]
        weighted = (history[f"{prefix}predictions_loss"][0]
                    + 0.3 * history[f"{prefix}aux1_loss"][0]
                    + 0.3 * history[f"{prefix}aux2_loss"][0])
        assert total == pytest.approx(weighted, rel=1e-4)
        # The task's metric names read the main head (what checkpoints monitor).
        assert history[f"{prefix}accuracy"] == history[f"{prefix}predictions_accuracy"]
    # The final evaluation is the main head's (vk.train.evaluate reads it too).
    data, _ = trained
    assert "accuracy" in run.metrics and 0.0 <= run.metrics["accuracy"] <= 1.0
    again = vk.train.evaluate(run.model, data)
    assert again["accuracy"] == run.metrics["accuracy"]
    assert again["num_examples"] == 16


@pytest.mark.slow
def test_export_drops_the_auxiliary_heads_and_serves_the_main_one(trained, tmp_path):
    data, run = trained
    path = vk.export.saved_model(run.model, tmp_path / "served", data)
    loaded = tf.saved_model.load(path)
    shapes = sorted(tuple(v.shape) for v in loaded.model_variables)
    assert shapes == sorted(tuple(v.shape) for v in main_head(run.model).variables)
    assert len(shapes) < len(run.model.variables)  # the auxiliary heads' are not there

    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    served = vk.export.load(path)(images)
    assert sorted(served) == ["class_id", "probabilities"]
    expected = np.asarray(run.model(images.astype("float32"), training=False)["predictions"])
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


def test_single_output_models_are_left_as_they_are():
    model = vk.models.build("simple_cnn", (16, 16, 3), 2, filters=(4,))
    assert main_head(model) is model
    dataset = tf.data.Dataset.from_tensors((tf.zeros((1, 16, 16, 3)), tf.zeros((1,))))
    assert labels_for_every_output(dataset, model) is dataset
    logs = {"predictions_accuracy": 0.5, "val_predictions_accuracy": 0.25,
            "predictions_loss": 1.0}
    MainHeadLogs().on_epoch_end(0, logs)
    assert logs["accuracy"] == 0.5 and logs["val_accuracy"] == 0.25 and "loss" not in logs


def test_labels_reach_every_head_and_distributed_input_is_refused():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"predictions": keras.layers.Dense(2)(inputs),
                                 "aux1": keras.layers.Dense(2)(inputs)})
    with pytest.raises(ValueError, match="multi-worker"):
        labels_for_every_output(object(), model)
    dataset = tf.data.Dataset.from_tensors((tf.zeros((1, 4)), tf.constant([1])))
    _, labels = next(iter(labels_for_every_output(dataset, model)))
    assert sorted(labels) == ["aux1", "predictions"]
    assert labels["aux1"].numpy().tolist() == labels["predictions"].numpy().tolist() == [1]


def test_evaluate_reads_the_main_head(tiny_digits):
    inputs = keras.Input(tiny_digits.input_shape)
    features = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    main = keras.layers.Dense(10, activation="softmax", name="predictions")(features)
    aux = keras.layers.Dense(10, activation="softmax", name="aux1")(features)
    model = keras.Model(inputs, {"predictions": main, "aux1": aux})
    single = keras.Model(inputs, main)
    assert vk.train.evaluate(model, tiny_digits)["accuracy"] == \
        vk.train.evaluate(single, tiny_digits)["accuracy"]
