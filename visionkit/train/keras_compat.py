"""Two fixes that let Keras's own `fit` train under MultiWorkerMirroredStrategy.

Keras 3.15's TensorFlow trainer fails under MultiWorkerMirroredStrategy before the first
step, in two places:

1. Before the first step it builds the model from a batch of the distributed input, which
   it first all-reduces with `strategy.reduce("MEAN", batch)`. Only the shapes matter for
   that build; across workers the reduce fails ("Attempt to convert a value (PerReplica
   ...) to a Tensor") and on one machine it is a wasted collective on a whole batch.
2. Each step reduces its logs (loss and metric values, all scalars) over the workers
   with `strategy.reduce("MEAN", value, axis=0)`; a scalar has no axis 0 ("Invalid
   reduction dimension 0 for input with 0 dimensions").

`distributed_fit_fixes(model)` applies both fixes while a `fit` runs under a multi-worker
strategy, and only then: the model builds from the first replica's local part of the
batch, and scalar logs are averaged over the replicas with `axis=None`, which is what
Keras means to compute. Everything else in the step is Keras's own. On one worker
(every other strategy, or none) Keras is left untouched. This is the one module of
visionkit that reaches into `keras.src`; it is tested against the Keras releases
pyproject.toml allows.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

__all__ = ["distributed_fit_fixes"]

_lock = threading.Lock()
_active = 0
_keras_reduce_per_replica = tf_trainer.reduce_per_replica


def _is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def _reduce_per_replica(values: Any, strategy: tf.distribute.Strategy, reduction: str) -> Any:
    """Keras's `reduce_per_replica`, with scalars averaged over the workers on no axis."""
    if reduction not in ("auto", "mean") or not _is_multi_worker(strategy):
        return _keras_reduce_per_replica(values, strategy, reduction)

    def reduce(value):
        if isinstance(value, (tf.Tensor, tf.Variable, tf.distribute.DistributedValues)):
            rank = strategy.experimental_local_results(value)[0].shape.rank
            if rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
        return _keras_reduce_per_replica(value, strategy, reduction)

    return tf.nest.map_structure(reduce, values)


def _maybe_symbolic_build(self: keras.Model, iterator: Any = None, data_batch: Any = None
                          ) -> None:
    """Keras's pre-fit build, from one replica's local batch (no collective)."""
    strategy = self._distribute_strategy
    if strategy is None:
        return
    if iterator is not None:
        for _, _, batches in iterator:
            batch = next(batches)
            data_batch = tf.nest.map_structure(
                lambda value: strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues) else value, batch)
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


@contextlib.contextmanager
def distributed_fit_fixes(model: keras.Model) -> Iterator[None]:
    """Within the block, `model.fit` works under MultiWorkerMirroredStrategy too.

    Unless `model` trains under a multi-worker strategy, nothing changes. The model and
    Keras are left as they were afterwards.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.layers.Dense(2)])
    >>> with distributed_fit_fixes(model):
    ...     "_maybe_symbolic_build" in vars(model)
    False
    """
    global _active
    if not _is_multi_worker(model.distribute_strategy):
        yield
        return
    vars(model)["_maybe_symbolic_build"] = types.MethodType(_maybe_symbolic_build, model)
    with _lock:
        _active += 1
        tf_trainer.reduce_per_replica = _reduce_per_replica
    try:
        yield
    finally:
        vars(model).pop("_maybe_symbolic_build", None)
        with _lock:
            _active -= 1
            if not _active:
                tf_trainer.reduce_per_replica = _keras_reduce_per_replica
