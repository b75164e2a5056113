"""Training under MultiWorkerMirroredStrategy: a small explicit loop of public APIs.

Keras 3's `fit` cannot train under a multi-worker strategy (measured on Keras 3.15):
before the first step it all-reduces a whole input batch to learn shapes
(`strategy.reduce("MEAN", batch)` on an `(images, labels)` tuple, which fails across
workers), and every step reduces its scalar logs with `strategy.reduce(..., axis=0)`
("Invalid reduction dimension 0 for input with 0 dimensions"). Both happen inside
Keras's trainer, out of reach of a public option.

`multi_worker_fit` is `fit`'s loop written with public APIs only, for that one case:
`strategy.run(model.train_step)` per step, step logs averaged over the replicas with
`strategy.reduce("MEAN", value, axis=None)`, epoch logs read from the model's metrics
(`model.get_metrics_result()`, whose variables sum over every worker when read), the
validation pass through `model.test_step`, and the same `keras.callbacks.CallbackList`
(history, progress bar, `set_params`) `fit` drives, so every callback sees what it sees
under `fit`. The model, its compiled loss and metrics are built before the first step by
running `model.test_step` once on the first local batch (no collective over the batch).
Every other strategy, and none, trains with Keras's own `fit`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.train.distribute import num_workers

__all__ = ["is_multi_worker", "multi_worker_fit"]


def is_multi_worker(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether `strategy` is a MultiWorkerMirroredStrategy spanning several workers."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) \
        and num_workers(strategy) > 1


def _mean_over_replicas(strategy: tf.distribute.Strategy, logs: Any) -> Any:
    """Each per-replica value of `logs` averaged over all replicas of all workers."""
    def reduce(value: Any) -> Any:
        if isinstance(value, (tf.Tensor, tf.Variable, tf.distribute.DistributedValues)):
            return strategy.reduce("MEAN", value, axis=None)
        return value

    return tf.nest.map_structure(reduce, logs)


def _step_function(model: keras.Model, strategy: tf.distribute.Strategy,
                   step: Any) -> Any:
    """One compiled step: `step` on every replica's batch, logs averaged over replicas."""
    replica_step = tf.function(step, jit_compile=True) if model.jit_compile is True else step

    @tf.function(reduce_retracing=True)
    def run(batch: Any) -> Any:
        return _mean_over_replicas(strategy, strategy.run(replica_step, args=(batch,)))

    return run


def _epoch_logs(model: keras.Model, logs: dict[str, Any]) -> dict[str, Any]:
    """The model's metrics over the whole epoch (all workers), as `fit` reports them.

    A model whose step returns other keys than its metrics (a custom `train_step`)
    keeps the last step's logs, as under `fit`.
    """
    metrics = model.get_metrics_result()
    return dict(metrics) if set(metrics) == set(logs) else dict(logs)


def multi_worker_fit(model: keras.Model, strategy: tf.distribute.Strategy, train: Any,
                     epochs: int, steps: int, validation: tf.data.Dataset | None,
                     validation_steps: int | None, callbacks: list[keras.callbacks.Callback],
                     verbose: int, initial_epoch: int = 0) -> keras.callbacks.History:
    """`model.fit` under a multi-worker strategy, with the same callbacks and history.

    Args:
        model: a compiled model whose variables were created under `strategy`.
        strategy: the `tf.distribute.MultiWorkerMirroredStrategy`.
        train: the distributed training input (e.g. from
            `strategy.distribute_datasets_from_function`), repeated: `steps` batches are
            read per epoch from one iterator.
        epochs: the epoch to stop before (counted from 0, as `fit`'s `epochs`).
        steps: training steps per epoch.
        validation: the repeated validation dataset of global batches, or None; it is
            split over the workers by `strategy.experimental_distribute_dataset`.
        validation_steps: validation steps per epoch.
        callbacks: Keras callbacks, called as `fit` calls them.
        verbose: 0 (silent), 1 (progress bar) or 2 (one line per epoch).
        initial_epoch: the first epoch to run (counted from 0).

    Returns:
        The `keras.callbacks.History` of the run (also `model.history`).

    Raises:
        ValueError: if `strategy` is not a multi-worker strategy.
    """
    if not is_multi_worker(strategy):
        raise ValueError("multi_worker_fit trains under a MultiWorkerMirroredStrategy of "
                         f"several workers; received {type(strategy).__name__}.")
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
        epochs=int(epochs), steps=int(steps), model=model)
    history = next(c for c in callback_list.callbacks
                   if isinstance(c, keras.callbacks.History))
    train_iterator = iter(train)
    first_batch = next(train_iterator)
    # Builds the layers, the compiled loss and metrics from one local batch per replica;
    # the metrics' state it leaves is reset at the first epoch's start.
    strategy.run(model.test_step, args=(first_batch,))
    train_function = _step_function(model, strategy, model.train_step)
    test_function = _step_function(model, strategy, model.test_step)
    validation_iterator = None if validation is None else \
        iter(strategy.experimental_distribute_dataset(validation))

    def next_batch() -> Any:
        nonlocal first_batch
        if first_batch is not None:
            batch, first_batch = first_batch, None
            return batch
        return next(train_iterator)

    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, Any] = {}
    epoch_logs: dict[str, Any] | None = None
    for epoch in range(int(initial_epoch), int(epochs)):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(int(steps)):
            callback_list.on_train_batch_begin(step)
            logs = train_function(next_batch())
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = _epoch_logs(model, logs)
        if validation_iterator is not None:
            model.reset_metrics()
            callback_list.on_test_begin()
            test_logs: dict[str, Any] = {}
            for step in range(int(validation_steps or 0)):
                callback_list.on_test_batch_begin(step)
                test_logs = test_function(next(validation_iterator))
                callback_list.on_test_batch_end(step, test_logs)
            test_logs = _epoch_logs(model, test_logs)
            callback_list.on_test_end(test_logs)
            epoch_logs.update({f"val_{name}": value for name, value in test_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    return history
