"""A resumed run continues exactly where an uninterrupted one would be.

A run of 6 epochs is stopped after epoch 3 and started again with the same run
directory. The per-epoch learning rates (a plateau cut, a cosine position), losses and
validation values must equal those of a run that was never interrupted: the optimizer's
state, the plateau counters, the random streams of dropout and the epoch-seeded data
order (shuffle and augmentation) all carry over.

The in-process case interrupts by raising from a callback; the slow case kills a
training process with SIGKILL, as a preempted machine would.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import visionkit as vk

EPOCHS = 6
STOP_AFTER = 3  # epochs finished before the interruption
# Loss tolerance between runs (the same ops on the same inputs; float32 round-off).
LOSS_TOLERANCE = 1e-5


def _history(run_dir) -> dict[str, list[float]]:
    with open(os.path.join(run_dir, "history.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


class Interrupt(Exception):
    pass


def _fit(run_dir, schedule, stop_at=None):
    import keras

    class StopAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == stop_at:
                raise Interrupt()

    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0,
                          augment="light").take(96, 48)
    return vk.train.fit("simple_cnn", data, epochs=EPOCHS, run_dir=run_dir, seed=0,
                        verbose=0, model_kwargs={"filters": (8,)}, optimizer="sgd",
                        learning_rate=1e-4 if schedule == "plateau" else 0.05,
                        schedule=schedule, callbacks=[StopAt()], plots=False,
                        tensorboard=False, evaluate=False)


def _assert_same(resumed, reference):
    assert resumed["epoch"] == list(range(EPOCHS))
    np.testing.assert_allclose(resumed["learning_rate"], reference["learning_rate"], rtol=1e-6)
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(resumed[key], reference[key], rtol=LOSS_TOLERANCE,
                                   atol=LOSS_TOLERANCE, err_msg=key)


@pytest.mark.heavy
def test_plateau_counters_and_the_cut_rate_survive_an_interruption(tmp_path):
    _fit(tmp_path / "reference", "plateau")
    reference = _history(tmp_path / "reference")
    rates = reference["learning_rate"]
    # The schedule cuts at the end of epoch 3 (the last one before the interruption) and
    # again at epoch 5, which a resumed run only reaches with its counters restored.
    assert rates[STOP_AFTER - 1] < rates[0] and rates[4] < rates[STOP_AFTER]
    with pytest.raises(Interrupt):
        _fit(tmp_path / "run", "plateau", stop_at=STOP_AFTER)
    assert len(_history(tmp_path / "run")["loss"]) == STOP_AFTER
    _fit(tmp_path / "run", "plateau")
    _assert_same(_history(tmp_path / "run"), reference)


TRAIN_SCRIPT = """
import sys, time
import keras
import tensorflow as tf
import visionkit as vk

tf.config.experimental.enable_op_determinism()
run_dir, schedule, pause = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Pause(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == pause:
            print("PAUSED", flush=True)
            time.sleep(600)

data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0, augment="light").take(96, 48)
vk.train.fit("simple_cnn", data, epochs=EPOCHS, run_dir=run_dir, seed=0, verbose=0,
             model_kwargs={"filters": (8,)}, optimizer="sgd",
             learning_rate=1e-4 if schedule == "plateau" else 0.05, schedule=schedule,
             callbacks=[Pause()], plots=False, tensorboard=False, evaluate=False)
print("DONE", flush=True)
""".replace("EPOCHS", str(EPOCHS))


def _run(run_dir, schedule, pause: int, marker: str, timeout: float = 300) -> None:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(run_dir), schedule, str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip() == marker:
                break
        else:
            raise AssertionError(f"the training process ended without {marker}: {lines}")
        if marker == "PAUSED":
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_a_killed_run_resumes_exactly(tmp_path, schedule):
    _run(tmp_path / "reference", schedule, pause=-1, marker="DONE")
    reference = _history(tmp_path / "reference")
    _run(tmp_path / "run", schedule, pause=STOP_AFTER, marker="PAUSED")
    assert len(_history(tmp_path / "run")["loss"]) == STOP_AFTER
    _run(tmp_path / "run", schedule, pause=-1, marker="DONE")
    _assert_same(_history(tmp_path / "run"), reference)
    if schedule == "cosine":  # the rate follows the cosine over all 6 epochs' steps
        steps = 6 * np.arange(1, EPOCHS + 1)
        expected = 0.05 * 0.5 * (1 + np.cos(np.pi * steps / (6 * EPOCHS)))
        np.testing.assert_allclose(reference["learning_rate"], expected, atol=1e-7)
