"""Distribution strategies by name, from TensorFlow's own engines."""

from __future__ import annotations

import json
import os

import tensorflow as tf

__all__ = ["resolve_strategy", "is_chief", "STRATEGIES"]

STRATEGIES = ("mirrored", "multi_worker", "tpu")


def resolve_strategy(strategy: str | tf.distribute.Strategy | None,
                     devices: list[str] | None = None) -> tf.distribute.Strategy | None:
    """Returns a `tf.distribute.Strategy` for a name, or None for the default device.

    Args:
        strategy: None, "mirrored" (all local GPUs, or `devices`), "multi_worker"
            (MultiWorkerMirroredStrategy configured by the TF_CONFIG environment variable),
            "tpu", or a Strategy object (returned as is).
        devices: device names for "mirrored", e.g. ["/cpu:0", "/cpu:1"].

    Raises:
        ValueError: for an unknown name or a malformed TF_CONFIG.
    """
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if strategy == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {strategy!r}; expected None, one of {STRATEGIES}, or a "
                     "tf.distribute.Strategy.")


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError("strategy='multi_worker' needs the TF_CONFIG environment variable "
                         "(cluster and task of this worker); it is not set.")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}. Received: {raw[:200]!r}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError("TF_CONFIG must be a JSON object with 'cluster' and 'task' keys; "
                         f"received {raw[:200]!r}.")


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes run directories and exports (worker 0, or alone)."""
    if strategy is None:
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())
