"""Scaling out: mirrored replicas, the tf.data service, bad input.

Logical devices and TF_CONFIG are fixed when TensorFlow starts, so the distributed runs
happen in subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import keras
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.train.distribute import (
    check_service_reachable,
    global_batch_size,
    num_workers,
    resolve_strategy,
)

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

# A model without batch norm or dropout: replicas compute exactly what one device does.
MODEL = textwrap.dedent("""
    import keras
    def _layers():
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Rescaling(1 / 255)(inputs)
        x = keras.layers.Conv2D(8, 3, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    keras.utils.set_random_seed(1)
    INITIAL = _layers().get_weights()
    def plain_model():
        model = _layers()
        model.set_weights(INITIAL)  # the same starting point on one device and on two
        return model
""")

MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
""") + MODEL + textwrap.dedent("""
    import visionkit as vk
    import dataclasses
    # A fixed example order: tf.data's seeded shuffle does not survive the rewrite that
    # splits batches over replicas, so the comparison uses the sources' own mixed order.
    base = dataclasses.replace(vk.data.digits(image_size=(16, 16), seed=0).take(128, 32),
                               shuffle_buffer=1)
    single = vk.train.fit(plain_model, base.with_batch_size(32), epochs=3, verbose=0,
                          optimizer="sgd", learning_rate=0.1, evaluate=False, augment="none")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = vk.train.fit(plain_model, base.with_batch_size(16), epochs=3, verbose=0,
                            optimizer="sgd", learning_rate=0.1, strategy=strategy,
                            scale_learning_rate=False, run_dir=sys.argv[1], augment="none")
    print(json.dumps({"single": single.history["loss"], "mirrored": mirrored.history["loss"],
                      "replicas": strategy.num_replicas_in_sync}))
""")


def _run(script, *arguments, environment=None, timeout=300):
    return subprocess.run([sys.executable, "-c", script, *map(str, arguments)],
                          capture_output=True, text=True, env=environment or ENVIRONMENT,
                          timeout=timeout)


@pytest.mark.heavy
def test_mirrored_replicas_follow_the_single_device_loss_curve(tmp_path):
    completed = _run(MIRRORED, tmp_path / "run")
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["single"][-1] < result["single"][0], "the model learns"
    for single, mirrored in zip(result["single"], result["mirrored"]):
        assert mirrored == pytest.approx(single, rel=1e-4, abs=1e-5)
    assert (tmp_path / "run" / "metrics.json").exists()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("127.0.0.1", 0))
    ports = [item.getsockname()[1] for item in sockets]
    for item in sockets:
        item.close()
    return ports


class CountExamples(keras.metrics.Metric):
    """Counts the examples the model was trained on."""

    def __init__(self, name="examples"):
        super().__init__(name=name)
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.count.assign_add(keras.ops.cast(keras.ops.shape(y_true)[0], "float32"))

    def result(self):
        return keras.ops.copy(self.count)  # a value, not the variable evaluation resets


def test_training_through_an_in_process_data_service(tiny_digits):
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer()
    address = dispatcher.target.removeprefix("grpc://")
    worker = service.WorkerServer(service.WorkerConfig(dispatcher_address=address))
    seen = {}
    for label, option in (("local", None), ("service", dispatcher.target)):
        model = vk.models.build("simple_cnn", tiny_digits.input_shape, 10, filters=(4,))
        run = vk.train.fit(model, tiny_digits, epochs=2, verbose=0, evaluate=False,
                           data_service=option, metrics=[CountExamples()])
        seen[label] = run.history["examples"]
    # Keras resets metrics each epoch: each epoch sees the whole training split once.
    assert seen["local"] == [tiny_digits.train_size] * 2
    assert seen["service"] == seen["local"]
    del worker, dispatcher


def test_an_unreachable_data_service_fails_fast():
    (port,) = _free_ports(1)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        check_service_reachable(f"grpc://127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - start < 5
    with pytest.raises(ValueError, match="grpc://host:5050"):
        check_service_reachable("127.0.0.1:5050")


def test_malformed_tf_config_and_batch_sizes_are_named(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        resolve_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {}}))
    with pytest.raises(ValueError, match="'cluster' and 'task'"):
        resolve_strategy("multi_worker")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_strategy("multi_worker")
    with pytest.raises(ValueError, match="strategy 'mirored'"):
        resolve_strategy("mirored")
    assert global_batch_size(16, 2) == 32
    assert global_batch_size(16, 2, requested=64) == 64
    with pytest.raises(ValueError, match="global_batch_size=33 cannot be split evenly over 2"):
        global_batch_size(16, 2, requested=33)
    assert num_workers(None) == 1


MIRRORED_BATCH_NORM = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import numpy as np
    import visionkit as vk
    from visionkit.train.precise_bn import (recompute_batch_norm_statistics,
                                            trainable_batch_norm_layers)
    data = vk.data.digits(image_size=(16, 16), seed=0).take(64, 16)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    run = vk.train.fit("simple_cnn", data.with_batch_size(8), epochs=1, verbose=0,
                       strategy=strategy, model_kwargs={"filters": (4,)},
                       restore_best=False, checkpoint=False)
    layers = trainable_batch_norm_layers(run.model)
    held = [np.array(layer.moving_mean) for layer in layers]
    # The global batch of 16 (8 per replica) without augmentation, on one device.
    recompute_batch_norm_statistics(run.model, data.with_batch_size(16)
                                    .with_augmentation(None).train)
    print(json.dumps({"layers": len(layers), "equal": [
        bool(np.allclose(a, np.array(layer.moving_mean), atol=1e-5))
        for a, layer in zip(held, layers)]}))
""")


@pytest.mark.heavy
def test_mirrored_replicas_recompute_batch_norm_statistics_of_the_global_batch():
    """fit's PreciseBN under two replicas leaves the statistics one device computes from
    the same training batches (the whole 64-image split)."""
    completed = _run(MIRRORED_BATCH_NORM)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["layers"] > 0 and all(result["equal"]), result
