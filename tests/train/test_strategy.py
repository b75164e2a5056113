"""strategy="mirrored" on two logical CPU devices (in a subprocess: devices are fixed at start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import numpy as np
    import visionkit as vk
    data = vk.data.digits(image_size=(16, 16), batch_size=16).take(64, 32)
    strategy = vk.train.distribute.resolve_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    model = vk.models.build("simple_cnn", data.input_shape, 10, filters=(8,))
    before = [w.copy() for w in model.get_weights()]
    run = vk.train.fit(model, data, epochs=2, strategy=strategy, verbose=0,
                       run_dir=sys.argv[1])
    changed = any(not np.allclose(a, b) for a, b in zip(before, run.model.get_weights()))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": run.history["loss"],
                      "changed": changed, "accuracy": run.metrics["accuracy"]}))
""")


def test_mirrored_strategy_trains_on_two_logical_devices(tmp_path):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")],
                               capture_output=True, text=True, env=environment, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["changed"]
    assert all(value == value and value < 10 for value in result["loss"])
    assert (tmp_path / "run" / "metrics.json").exists()
