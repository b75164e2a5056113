"""Two worker processes on 127.0.0.1 train one model with strategy="multi_worker"."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# A model without batch normalization (whose statistics are per replica), on unshuffled,
# unaugmented batches: two workers on halves of each global batch must then compute what
# one process computes on the whole global batch.
COMMON = textwrap.dedent("""
    import dataclasses
    import keras
    import visionkit as vk

    def tiny_model():
        return keras.Sequential([
            keras.Input((12, 12, 3)), keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax")], name="tiny")

    def tiny_data(batch_size):
        data = vk.data.digits(image_size=(12, 12), batch_size=batch_size, seed=0)
        return dataclasses.replace(data.take(96, 32), shuffle_buffer=1)

    OPTIONS = dict(epochs=2, seed=0, learning_rate=0.01, scale_learning_rate=False,
                   augment="none", verbose=0, plots=False)
""")

WORKER = COMMON + textwrap.dedent("""
    import json, os, sys
    out = sys.argv[1]
    import numpy as np

    strategy = vk.train.distribute.resolve_strategy("multi_worker")
    data = tiny_data(8)
    run = vk.train.fit(tiny_model, data, strategy=strategy, run_dir=os.path.join(out, "run"),
                       **OPTIONS)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if run.chief:
        vk.export.saved_model(run.model, os.path.join(out, "export"), data=data)
    np.savez(os.path.join(out, f"worker_{index}.npz"),
             *[np.asarray(w) for w in run.model.trainable_weights])
    with open(os.path.join(out, f"worker_{index}.json"), "w") as handle:
        json.dump({"chief": run.chief, "history": run.history,
                   "run_dir": run.run_dir}, handle)
""")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.heavy
def test_two_workers_train_one_model_and_only_the_chief_writes(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        out = tmp_path / f"worker{index}"
        out.mkdir()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, str(script), str(out)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240)[0])
    finally:
        for process in processes:
            process.kill()
    for index, (process, output) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index} failed:\n{output[-3000:]}"

    reports = [json.loads((tmp_path / f"worker{i}" / f"worker_{i}.json").read_text())
               for i in range(2)]
    assert [report["chief"] for report in reports] == [True, False]
    # Both ran both epochs with the same (all-reduced) logs.
    assert len(reports[0]["history"]["loss"]) == 2
    np.testing.assert_allclose(reports[0]["history"]["loss"], reports[1]["history"]["loss"],
                               rtol=1e-6)
    # One process on the global batches of 16 (each the union of the workers' halves:
    # the shards take every other record) computes the same losses and weights.
    namespace: dict = {}
    exec(COMMON, namespace)
    alone = namespace["vk"].train.fit(namespace["tiny_model"], namespace["tiny_data"](16),
                                      evaluate=False, **namespace["OPTIONS"])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(reports[0]["history"][key], alone.history[key],
                                   rtol=1e-4, err_msg=key)
    # Gradients were all-reduced: both workers end with the same trainable weights.
    weights = [np.load(tmp_path / f"worker{i}" / f"worker_{i}.npz") for i in range(2)]
    assert len(weights[0].files) > 0
    for name in weights[0].files:
        np.testing.assert_allclose(weights[0][name], weights[1][name], atol=1e-6)
    # ... and the weights of one process (the best epoch's in both: the same histories).
    assert alone.weights_epoch in (1, 2)
    for name, expected in zip(weights[0].files, alone.model.trainable_weights):
        np.testing.assert_allclose(weights[0][name], np.asarray(expected), atol=1e-5)
    # Training moved the weights (the all-reduce did not zero the gradients).
    assert reports[0]["history"]["loss"][1] < reports[0]["history"]["loss"][0]
    # Only the chief wrote a run directory and an export.
    chief, other = tmp_path / "worker0", tmp_path / "worker1"
    assert (chief / "run" / "history.csv").is_file()
    assert (chief / "run" / "checkpoints" / "best.keras").is_file()
    assert (chief / "export" / "1" / "saved_model.pb").is_file()
    assert reports[1]["run_dir"] is None
    assert not (other / "run").exists() and not (other / "export").exists()


def test_shards_split_the_training_records_without_overlap():
    import visionkit as vk

    data = vk.data.digits(image_size=(8, 8), batch_size=4, seed=0).take(50, 10)
    shards = [data.shard(3, i) for i in range(3)]
    assert [s.train_size for s in shards] == [17, 17, 16]
    seen = [np.concatenate([images.numpy().reshape(len(images), -1)
                            for images, _ in s.with_augmentation(None).train])
            for s in shards]
    everything = np.concatenate([images.numpy().reshape(len(images), -1)
                                 for images, _ in data.train])
    keys = [{row.tobytes() for row in part} for part in seen]
    assert sum(len(k) for k in keys) == len(set().union(*keys))  # no overlap
    assert set().union(*keys) == {row.tobytes() for row in everything}
    with pytest.raises(ValueError, match="index=3"):
        data.shard(3, 3)


def test_the_explicit_loop_is_for_multi_worker_strategies_only():
    import keras
    import tensorflow as tf

    from visionkit.train.multi_worker import is_multi_worker, multi_worker_fit

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert not is_multi_worker(None) and not is_multi_worker(mirrored)
    with pytest.raises(ValueError, match="received MirroredStrategy"):
        multi_worker_fit(keras.Sequential([keras.layers.Dense(1)]), mirrored, None, epochs=1,
                         steps=1, validation=None, validation_steps=None, callbacks=[],
                         verbose=0)
