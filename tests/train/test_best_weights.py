"""A run hands on its best epoch's weights: evaluation, export and metrics.json use them.

The run below learns for two epochs, then a callback wrecks the weights at the end of
every later epoch, so the best validation value comes from an early epoch. The model
`fit` returns, its evaluation and its export must be that epoch's (`best.keras`), not the
last one's.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import visionkit as vk

EPOCHS = 4
GOOD_EPOCHS = 2


class WreckAfter(keras.callbacks.Callback):
    """From the end of epoch `GOOD_EPOCHS` on, replaces every kernel with noise."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= GOOD_EPOCHS:
            generator = np.random.default_rng(epoch)
            self.model.set_weights([generator.normal(0, 3, w.shape).astype(w.dtype)
                                    for w in self.model.get_weights()])


def _fit(data, run_dir=None, restore_best=True):
    keras.utils.set_random_seed(0)
    model = vk.models.build("simple_cnn", data.input_shape, data.num_classes,
                            filters=(8, 16))
    # Keras's moving averages (precise_bn=False): recomputed batch-norm statistics would
    # repair the wrecked ones before each validation, and a later epoch could be best.
    return vk.train.fit(model, data, epochs=EPOCHS, run_dir=run_dir, verbose=0, seed=0,
                        learning_rate=1e-2, callbacks=[WreckAfter()], plots=False,
                        tensorboard=False, restore_best=restore_best, precise_bn=False)


def _images(data):
    return np.concatenate([np.asarray(x) for x, _ in data.val])


def test_the_best_epoch_is_evaluated_and_exported(tmp_path, tiny_digits):
    run = _fit(tiny_digits, tmp_path / "run")
    history = run.history["val_accuracy"]
    best_epoch = int(np.argmax(history)) + 1
    assert best_epoch <= GOOD_EPOCHS < EPOCHS
    assert max(history) > max(history[GOOD_EPOCHS:])  # strictly better than the wrecked
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["weights_epoch"] == run.weights_epoch == best_epoch
    assert metrics["best"]["epoch"] == best_epoch
    best = keras.saving.load_model(run.best_checkpoint)
    for mine, kept in zip(run.model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(mine, kept)
    # The final evaluation is the best epoch's validation accuracy.
    assert metrics["accuracy"] == pytest.approx(history[best_epoch - 1], abs=1e-6)
    # The export serves best.keras's probabilities (compared here, so the exporter's own
    # verification, tested in tests/export, is not repeated).
    path = vk.export.saved_model(run.model, str(tmp_path / "export"), data=tiny_digits,
                                 verify=False)
    served = vk.export.load(path)
    images = _images(tiny_digits)[:8]
    outputs = served(np.clip(np.round(images), 0, 255).astype(np.uint8))
    expected = best.predict(np.round(images), verbose=0)
    np.testing.assert_allclose(np.asarray(outputs["probabilities"]), expected, atol=1e-5)


def test_without_a_run_directory_the_best_weights_come_from_memory(tiny_digits):
    run = _fit(tiny_digits)
    history = run.history["val_accuracy"]
    assert run.weights_epoch == int(np.argmax(history)) + 1
    assert run.metrics["accuracy"] == pytest.approx(max(history), abs=1e-6)


def test_restore_best_false_keeps_the_last_epoch(tmp_path, tiny_digits):
    run = _fit(tiny_digits, tmp_path / "run", restore_best=False)
    assert run.weights_epoch == EPOCHS
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["weights_epoch"] == EPOCHS and metrics["best"]["epoch"] <= GOOD_EPOCHS
    best = keras.saving.load_model(run.best_checkpoint)
    assert not np.array_equal(run.model.get_weights()[0], best.get_weights()[0])
