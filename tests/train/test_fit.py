"""vk.train.fit: run directory contents, task defaults, resumption, precision and XLA."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.train.precision import rebuild_model, resolve_jit_compile, resolve_mixed_precision

TINY = {"filters": (8, 16)}


def _tiny_model(data, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    return vk.models.build("simple_cnn", data.input_shape, data.num_classes,
                           activation=activation, **TINY)


def _val_arrays(data):
    images, labels = zip(*[(np.asarray(x), np.asarray(y)) for x, y in data.val])
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_digits):
    """A two-epoch run with the default options (plots, evaluation, TensorBoard): one fit
    that the tests of its run directory share."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    return vk.train.fit(_tiny_model(tiny_digits), tiny_digits, epochs=2, run_dir=run_dir,
                        verbose=0)


def test_fit_writes_the_run_directory(finished_run, tiny_digits):
    run = finished_run
    root = Path(run.run_dir)
    with open(root / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    for name in ("curves.png", "confusion_matrix.png"):
        with open(root / name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    # metrics.json agrees with predictions recomputed here.
    images, labels = _val_arrays(tiny_digits)
    predicted = np.argmax(run.model.predict(images, verbose=0), axis=-1)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert np.sum(metrics["confusion_matrix"]) == len(labels)
    # The best checkpoint reloads in safe mode.
    assert run.best_checkpoint == str(root / "checkpoints" / "best.keras")
    restored = keras.saving.load_model(run.best_checkpoint, safe_mode=True)
    assert restored.output_shape == run.model.output_shape
    assert json.loads((root / "config.json").read_text())["data"]["train_size"] == 96
    assert not os.path.exists(root / "backup"), "backup state is removed after a finished run"


def test_evaluate_matches_a_naive_count(tiny_digits):
    model = _tiny_model(tiny_digits)
    result = vk.train.evaluate(model, tiny_digits)
    images, labels = _val_arrays(tiny_digits)
    probabilities = model.predict(images, verbose=0)
    predicted = probabilities.argmax(-1)
    matrix = np.zeros((10, 10), int)
    for true, guess in zip(labels, predicted):
        matrix[true, guess] += 1
    assert result["confusion_matrix"] == matrix.tolist()
    for index, name in enumerate(tiny_digits.class_names):
        column = matrix[:, index].sum()
        expected_precision = matrix[index, index] / column if column else 0.0
        assert result["precision_per_class"][name] == pytest.approx(expected_precision)
        assert result["recall_per_class"][name] == pytest.approx(
            matrix[index, index] / matrix[index].sum())
    top5 = np.argsort(-probabilities, -1)[:, :5]
    assert result["top5_accuracy"] == pytest.approx(
        np.mean([label in row for label, row in zip(labels, top5)]))


def test_logits_models_train_with_a_from_logits_loss(tiny_digits):
    model = _tiny_model(tiny_digits, activation=None)
    assert vk.tasks.get_task("classification").loss(model).get_config()["from_logits"]
    run = vk.train.fit(model, tiny_digits, epochs=3, verbose=0, learning_rate=3e-3)
    assert run.history["loss"][-1] < run.history["loss"][0]
    result = vk.train.evaluate(run.model, tiny_digits)
    assert 0.0 <= result["accuracy"] <= 1.0


def test_fit_builds_models_by_name_and_checks_inputs(tiny_digits):
    run = vk.train.fit("simple_cnn", tiny_digits, epochs=1, verbose=0, evaluate=False,
                       model_kwargs=TINY, steps_per_epoch=1)
    assert run.model.output_shape == (None, 10)
    with pytest.raises(ValueError, match="epochs"):
        vk.train.fit("simple_cnn", tiny_digits, epochs=0)
    with pytest.raises(TypeError, match="Data"):
        vk.train.fit("simple_cnn", [1, 2, 3])
    with pytest.raises(ValueError, match="Unknown optimizer 'adamm'"):
        vk.train.fit(_tiny_model(tiny_digits), tiny_digits, optimizer="adamm")


class _StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path, tiny_digits):
    run_dir = tmp_path / "run"
    # BackupAndRestore saves at the end of each epoch; the interruption comes after it.
    backup_first = [_StopAfterEpoch(1)]
    with pytest.raises(KeyboardInterrupt):
        vk.train.fit(_tiny_model(tiny_digits), tiny_digits, epochs=4, run_dir=run_dir,
                     verbose=0, callbacks=backup_first)
    assert os.path.isdir(run_dir / "backup")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    run = vk.train.fit(_tiny_model(tiny_digits), tiny_digits, epochs=4, run_dir=run_dir,
                       verbose=0, callbacks=[Record()])
    assert seen == [2, 3], "the second run starts after the last finished epoch"
    assert len(run.history["loss"]) == 4, "history.csv holds all four epochs"


def test_optimizers_and_schedules_by_name():
    expected = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
                "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop,
                "adagrad": keras.optimizers.Adagrad}
    for name, optimizer_class in expected.items():
        optimizer = vk.train.make_optimizer(name, 0.01)
        assert type(optimizer) is optimizer_class
        assert float(optimizer.learning_rate) == pytest.approx(0.01)
    assert vk.train.make_optimizer("sgd", nesterov=True).nesterov
    cosine = vk.train.make_optimizer("sgd", 0.1, schedule="cosine", total_steps=100)
    schedule = cosine._learning_rate
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(50)) == pytest.approx(0.05, abs=1e-6)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="schedule"):
        vk.train.make_optimizer("sgd", schedule="linear")
    with pytest.raises(ValueError, match="learning_rate"):
        vk.train.make_optimizer("adam", -1.0)


def test_auto_options_resolve_for_a_cpu():
    assert resolve_mixed_precision("auto") == "float32"
    assert resolve_mixed_precision("bfloat16") == "mixed_bfloat16"
    assert resolve_jit_compile("auto") is False
    with pytest.raises(ValueError, match="mixed_precision"):
        resolve_mixed_precision("int8")
    with pytest.raises(ValueError, match="jit_compile"):
        resolve_jit_compile("sometimes")


def test_mixed_bfloat16_rebuild_keeps_weights_and_a_float32_head(tiny_digits):
    model = _tiny_model(tiny_digits)
    rebuilt = rebuild_model(model, "mixed_bfloat16")
    assert rebuilt.get_layer("conv1").compute_dtype == "bfloat16"
    assert rebuilt.get_layer("predictions").compute_dtype == "float32"
    for before, after in zip(model.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(before, after)
    images, _ = next(iter(tiny_digits.val))
    np.testing.assert_allclose(rebuilt(images), model(images), atol=0.05)
    run = vk.train.fit(model, tiny_digits, epochs=1, steps_per_epoch=2, verbose=0,
                       mixed_precision="mixed_bfloat16", evaluate=False)
    assert run.model.get_layer("conv2").compute_dtype == "bfloat16"
    assert np.isfinite(run.history["loss"][0])


def test_a_training_step_compiles_with_xla(tiny_digits):
    run = vk.train.fit(_tiny_model(tiny_digits), tiny_digits, epochs=1, steps_per_epoch=2,
                       validation_steps=1, verbose=0, jit_compile=True, evaluate=False)
    assert run.model.jit_compile is True
    assert np.isfinite(run.history["loss"][0])


def test_a_model_that_xla_cannot_compile_records_the_step_keras_runs(tiny_digits, tmp_path):
    # Keras's augmentation warps have no XLA kernel: Keras compiles without XLA (and
    # warns); the run's config says so instead of the jit_compile=True asked for.
    from visionkit.data.augment import preset_layers

    inputs = keras.Input(tiny_digits.input_shape)
    features = inputs
    for layer in preset_layers("light", seed=0):
        features = layer(features)
    outputs = keras.layers.Dense(tiny_digits.num_classes, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(features)))
    with pytest.warns(UserWarning, match="jit_compile"):
        run = vk.train.fit(keras.Model(inputs, outputs), tiny_digits, epochs=1,
                           steps_per_epoch=1, validation_steps=1, verbose=0, jit_compile=True,
                           evaluate=False, run_dir=tmp_path / "run", plots=False,
                           tensorboard=False)
    assert run.model.jit_compile is False
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["fit"]["jit_compile"] is False


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def test_tensorboard_logs_hold_the_epoch_values(finished_run):
    run = finished_run
    train = _scalars(Path(run.run_dir) / "tensorboard" / "train")
    validation = _scalars(Path(run.run_dir) / "tensorboard" / "validation")
    np.testing.assert_allclose(train["epoch_loss"], run.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(validation["epoch_accuracy"], run.history["val_accuracy"],
                               rtol=1e-6)
