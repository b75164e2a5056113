"""A seeded recipe repeats exactly: two fresh processes give identical histories and metrics.

Each run is a separate process (so nothing is shared through TensorFlow's or Keras's
global random state) running the digits recipe through the command line, shortened to
two epochs of six steps at 16x16. A third run with another seed shows that the figures
do depend on the random state, so their equality says something.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORT = ["--set", "train.epochs=2", "--set", "train.steps_per_epoch=6",
         "--set", "data.image_size=[16,16]", "--set", "train.verbose=0"]


def _start(run_dir: str, seed: int) -> subprocess.Popen:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "visionkit.cli", "train",
               os.path.join(ROOT, "pipelines", "digits_cnn.yaml"), *SHORT,
               "--set", f"seed={seed}", "--run-dir", run_dir]
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _outcome(run_dir: str) -> tuple[str, dict]:
    with open(os.path.join(run_dir, "history.csv")) as handle:
        history = handle.read()
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        return history, json.load(handle)


@pytest.mark.heavy
def test_seeded_digits_recipe_repeats_exactly_in_fresh_processes(tmp_path):
    runs = {name: (str(tmp_path / name), seed) for name, seed in
            (("first", 0), ("second", 0), ("other_seed", 1))}
    processes = {name: _start(run_dir, seed) for name, (run_dir, seed) in runs.items()}
    for name, process in processes.items():
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name} run failed:\n{errors[-2000:]}"
    first, second, other = (_outcome(runs[name][0]) for name in runs)
    assert len(first[0].strip().splitlines()) == 1 + 2  # header and two epochs
    assert first == second  # every logged figure, to the last digit
    assert first[0] != other[0] and first[1]["accuracy"] != other[1]["accuracy"]
