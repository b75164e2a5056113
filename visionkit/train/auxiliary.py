"""Training models with auxiliary classifiers (GoogLeNet's) through `vk.train.fit`.

A model with auxiliary classifiers outputs a dict: `{"predictions": main head, "aux1":
..., "aux2": ...}`, every head `[B, num_classes]` (`vk.models.build("googlenet", ...,
auxiliary_classifiers=True)`). `fit` trains every head on the image's label, the total
loss being the main head's plus 0.3 times each auxiliary head's (Szegedy et al. 2015,
"Going deeper with convolutions", Sec. 5: "the losses of the auxiliary classifiers were
weighted by 0.3"); metrics, checkpoints, evaluation and export read the main head only,
and `vk.export.saved_model` leaves the auxiliary heads out.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.models.classification.googlenet import (
    AUXILIARY_LOSS_WEIGHTS,
    drop_auxiliary_classifiers,
)

__all__ = ["auxiliary_outputs", "compile_for_task", "labels_for_every_output",
           "MainHeadLogs", "main_head"]

MAIN = "predictions"
AUXILIARY_LOSS_WEIGHT = AUXILIARY_LOSS_WEIGHTS["aux1"]  # 0.3, the paper's


def auxiliary_outputs(model: keras.Model) -> list[str]:
    """Names of `model`'s auxiliary outputs: those beside "predictions" in a dict output.

    Returns an empty list for a model with one output (or a dict without "predictions"),
    and for a model with no symbolic output yet (a training wrapper such as the distiller,
    or a Sequential model built on its first call): only functional models name heads.
    """
    try:
        outputs = model.output
    except AttributeError:  # Keras: "has never been called and thus has no defined output"
        return []
    if not isinstance(outputs, dict) or MAIN not in outputs:
        return []
    return sorted(name for name in outputs if name != MAIN)


def main_head(model: keras.Model) -> keras.Model:
    """`model` without its auxiliary classifiers (sharing its layers), or `model` itself.

    Only a dict output holding "predictions" and other heads is reduced (to the
    "predictions" head); any other model, detectors' dict outputs included, is returned
    unchanged.
    """
    return drop_auxiliary_classifiers(model) if auxiliary_outputs(model) else model


def compile_for_task(task: Any, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                     num_classes: int, loss: Any = None, metrics: Any = None,
                     jit_compile: bool = False) -> None:
    """Compiles `model` for `task`; with auxiliary classifiers, one loss per head.

    A model without auxiliary outputs is compiled by `task.compile`. Otherwise each
    head's loss is `loss` or the task's loss for that head (from logits or from
    probabilities as the head ends); loss weights are 1 for "predictions" and 0.3 for
    every auxiliary head. Keras names the main head's metrics `predictions_<metric>`;
    `MainHeadLogs` copies them to the task's names.
    """
    names = [MAIN, *auxiliary_outputs(model)]
    if len(names) == 1:
        task.compile(model, optimizer, num_classes=num_classes, loss=loss, metrics=metrics,
                     jit_compile=jit_compile)
        return
    losses = {name: loss if loss is not None else
              task.loss(keras.Model(model.input, model.output[name])) for name in names}
    weights = {name: 1.0 if name == MAIN else AUXILIARY_LOSS_WEIGHT for name in names}
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights,
                  metrics={MAIN: list(metrics) if metrics is not None
                           else task.metrics(num_classes)},
                  jit_compile=jit_compile)


def labels_for_every_output(dataset: Any, model: keras.Model) -> Any:
    """`(images, labels[, weights])` batches with the labels given to every head of `model`.

    Raises:
        ValueError: for a distributed (multi-worker) input, which cannot be mapped.
    """
    names = [MAIN, *auxiliary_outputs(model)]
    if dataset is None or len(names) == 1:
        return dataset
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError("Auxiliary classifiers are trained from one tf.data pipeline; "
                         f"received a {type(dataset).__name__} (a multi-worker strategy). "
                         "Build the model without auxiliary classifiers for this strategy.")

    def every_head(images, labels, *weights):
        return (images, {name: labels for name in names}, *weights)

    return dataset.map(every_head)


class MainHeadLogs(keras.callbacks.Callback):
    """Copies the main head's logs (`predictions_accuracy`) to the task's names (`accuracy`).

    Placed first among the callbacks, so checkpoints, early stopping, the CSV log and the
    history monitor the main head's metrics under the names every task uses; the
    prefixed entries and the auxiliary heads' losses stay in the logs.
    """

    @staticmethod
    def _copy(logs: dict | None) -> None:
        if not logs:
            return
        for key in list(logs):
            for prefix in ("", "val_"):
                head = f"{prefix}{MAIN}_"
                if key.startswith(head) and key != f"{head}loss":
                    logs.setdefault(prefix + key[len(head):], logs[key])

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._copy(logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._copy(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._copy(logs)
