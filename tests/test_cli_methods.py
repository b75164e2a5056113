"""`visionkit run --smoke` of the distillation and adversarial-training recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow  # two subprocesses that train (a teacher, a student, an adversarial run)
@pytest.mark.parametrize("name", ["digits_distill", "digits_adversarial"])
def test_visionkit_run_smoke(name, tmp_path, repo_root):
    completed = subprocess.run(
        [sys.executable, "-m", "visionkit.cli", "run",
         os.path.join(repo_root, "pipelines", f"{name}.yaml"), "--smoke",
         "--run-dir", str(tmp_path / "run"), "--export-root", str(tmp_path / "saved")],
        capture_output=True, text=True, env=ENVIRONMENT, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "saved" / name / "1" / "saved_model.pb").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    if name == "digits_distill":  # the teacher trained first, in its own run directory
        assert (tmp_path / "run" / "teacher" / "checkpoints" / "best.keras").exists()
        history = (tmp_path / "run" / "history.csv").read_text().splitlines()[0]
        assert "distillation_loss" in history
