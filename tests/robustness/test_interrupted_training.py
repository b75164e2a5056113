"""A training process killed mid-epoch resumes from its last finished epoch.

The run is killed with SIGKILL (no chance to clean up) while it waits inside an epoch,
then started again with the same run directory. It must resume at the epoch boundary
(BackupAndRestore), finish the same number of epochs, and keep the best-checkpoint
bookkeeping consistent with the history: the checkpoint holds the best epoch's weights.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.callbacks import BestCheckpoint

EPOCHS = 4
# Train a small CNN on the embedded digits; with a "pause" argument "E:B", wait (to be
# killed) after batch B of epoch E (both counted from 0). Prints the epochs it runs.
TRAIN_SCRIPT = """
import sys, time
import keras
import visionkit as vk

run_dir, pause = sys.argv[1], sys.argv[2]

class Progress(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        print(f"EPOCH {epoch}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        if f"{self.epoch}:{batch}" == pause:
            print("PAUSED", flush=True)
            time.sleep(600)

data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
vk.train.fit("simple_cnn", data, epochs=EPOCHS, run_dir=run_dir, seed=0, verbose=0,
             model_kwargs={"filters": (8,)}, callbacks=[Progress()], plots=False,
             tensorboard=False, evaluate=False)
print("DONE", flush=True)
""".replace("EPOCHS", str(EPOCHS))


def _start(run_dir: str, pause: str) -> subprocess.Popen:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, run_dir, pause],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=environment)


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> list[str]:
    """Lines printed until `marker` (inclusive); kills the process after `timeout` s."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip() == marker:
                return lines
    finally:
        timer.cancel()
    raise AssertionError(f"the training process ended without printing {marker}: {lines}")


def _history(run_dir) -> list[dict[str, float]]:
    with open(os.path.join(run_dir, "history.csv"), newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.mark.heavy
def test_run_killed_mid_epoch_resumes_at_the_epoch_boundary(tmp_path):
    run_dir = str(tmp_path / "run")
    first = _start(run_dir, pause="2:2")  # inside epoch 3 of 4
    assert _read_until(first, "PAUSED", timeout=120) == ["EPOCH 0", "EPOCH 1", "EPOCH 2",
                                                        "PAUSED"]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert len(_history(run_dir)) == 2  # two finished epochs were logged
    assert os.path.isdir(os.path.join(run_dir, "backup"))

    second = _start(run_dir, pause="")
    lines = _read_until(second, "DONE", timeout=120)
    second.wait(timeout=30)
    assert lines == ["EPOCH 2", "EPOCH 3", "DONE"]  # resumed; finished epochs not rerun
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # removed once finished

    history = _history(run_dir)
    assert [row["epoch"] for row in history] == list(range(EPOCHS))

    # Best-checkpoint bookkeeping agrees with the history, across the restart.
    with open(os.path.join(run_dir, "checkpoints", "best.json")) as handle:
        best = json.load(handle)
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["epochs"] == EPOCHS and metrics["best"] == best
    assert best["monitor"] == "val_accuracy"
    values = [row["val_accuracy"] for row in history]
    first_best = int(np.argmax(values))  # Keras saves on a strict improvement only
    assert best["epoch"] == first_best + 1
    assert best["value"] == pytest.approx(values[first_best])

    # The checkpoint holds that epoch's weights: it scores the logged value again.
    model = keras.saving.load_model(os.path.join(run_dir, "checkpoints", "best.keras"))
    data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
    scores = model.evaluate(data.val, return_dict=True, verbose=0)
    assert scores["accuracy"] == pytest.approx(values[first_best], abs=1e-6)
    assert scores["loss"] == pytest.approx(history[first_best]["val_loss"], rel=1e-4)


def _tiny_model() -> keras.Model:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(loss="mse")
    return model


@pytest.mark.parametrize("resuming", [True, False])
def test_best_checkpoint_remembers_the_best_value_only_when_resuming(tmp_path, resuming):
    path = tmp_path / "checkpoints" / "best.keras"
    path.parent.mkdir()
    (tmp_path / "checkpoints" / "best.json").write_text(
        json.dumps({"epoch": 2, "monitor": "val_accuracy", "value": 0.9}))
    backup = tmp_path / "backup"
    if resuming:
        backup.mkdir()
    callback = BestCheckpoint(path, monitor="val_accuracy", mode="max", resume_dir=backup)
    callback.set_model(_tiny_model())
    callback.on_train_begin()
    callback.on_epoch_end(2, {"val_accuracy": 0.5})  # worse than the run's best so far
    assert path.exists() is not resuming
    callback.on_epoch_end(3, {"val_accuracy": 0.95})
    assert path.exists()
    record = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert record == {"epoch": 4, "monitor": "val_accuracy", "value": pytest.approx(0.95)}
