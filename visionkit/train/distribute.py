"""Distribution strategies by name, from TensorFlow's own engines."""

from __future__ import annotations

import json
import os

import tensorflow as tf

__all__ = ["resolve_strategy", "is_chief", "num_workers", "global_batch_size",
           "check_service_reachable", "through_data_service", "parse_service_address",
           "STRATEGIES"]

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
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            if "program startup" not in str(error):
                raise
            raise ValueError(
                "strategy='multi_worker' must be created before TensorFlow runs anything "
                "(before building data or models): call "
                "`strategy = vk.train.distribute.resolve_strategy('multi_worker')` first and "
                "pass the strategy object to fit.") from None
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


def num_workers(strategy: tf.distribute.Strategy | None) -> int:
    """How many worker processes (input pipelines) a strategy spans; 1 without one."""
    if strategy is None:
        return 1
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


# Linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): when the batch
# grows k times, multiply the learning rate by k.
def global_batch_size(per_replica: int, replicas: int, requested: int | None = None) -> int:
    """The global batch: `per_replica * replicas`, or `requested` if it divides evenly.

    Raises:
        ValueError: if `requested` is not a multiple of `replicas`.
    """
    if requested is None:
        return int(per_replica) * int(replicas)
    if int(requested) < 1 or int(requested) % int(replicas):
        raise ValueError(
            f"global_batch_size={requested} cannot be split evenly over {replicas} replicas; "
            f"use a multiple of {replicas} (e.g. {max(1, int(requested) // replicas) * replicas}).")
    return int(requested)


DATA_SERVICE_TIMEOUT_SECONDS = 10.0


def parse_service_address(address: str) -> tuple[str, str, int]:
    """Splits "grpc://host:port" into (protocol, host, port).

    Raises:
        ValueError: for an address without a protocol, host or numeric port.
    """
    protocol, separator, rest = str(address).partition("://")
    host, colon, port = rest.rpartition(":")
    if not separator or protocol not in ("grpc", "grpc+local") or not colon or not host \
            or not port.isdigit():
        raise ValueError(f"Expected a tf.data service address like 'grpc://host:5050'; "
                         f"received data_service={address!r}.")
    return protocol, host, int(port)


def check_service_reachable(address: str,
                            timeout: float = DATA_SERVICE_TIMEOUT_SECONDS) -> None:
    """Fails fast, within `timeout` seconds, when no dispatcher listens at `address`.

    The tf.data service client itself retries an unreachable dispatcher indefinitely, so
    visionkit checks the TCP connection first.

    Raises:
        ConnectionError: naming the address when nothing answers in time.
    """
    import socket

    _, host, port = parse_service_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as error:
        raise ConnectionError(
            f"No tf.data service dispatcher answered at {address!r} within {timeout:g} s "
            f"({error}). Start one with `visionkit data-service dispatcher --port {port}`."
        ) from None


def through_data_service(dataset: tf.data.Dataset, address: str,
                         job_name: str = "visionkit") -> tf.data.Dataset:
    """Runs `dataset`'s pipeline on tf.data service workers instead of this process.

    Every consumer receives the whole dataset ("parallel_epochs"), so a single trainer
    sees the same examples as with a local pipeline.
    """
    check_service_reachable(address)
    protocol, host, port = parse_service_address(address)
    return dataset.apply(tf.data.experimental.service.distribute(
        processing_mode="parallel_epochs", service=f"{protocol}://{host}:{port}",
        job_name=job_name))
