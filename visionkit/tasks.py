"""Task objects: the per-task choices every other module asks for.

A task owns its loss, metrics, the quantity checkpoints monitor, how served outputs are
post-processed and how a model is evaluated. Code elsewhere asks the task; it does not
branch on task names. Segmentation and detection plug in here as further subclasses.

Example:

>>> from visionkit.tasks import get_task
>>> get_task("classification").name
'classification'
"""

from __future__ import annotations

import difflib
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["Task", "Classification", "get_task", "ends_in_probabilities", "TASKS"]

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def ends_in_probabilities(model: keras.Model) -> bool:
    """Whether `model`'s last layer applies softmax or sigmoid.

    Builders end in a layer named after their output with `activation="softmax"` (the
    default) or `activation=None` for logits. Losses and served outputs use this to decide
    whether to apply softmax themselves.

    Args:
        model: a Keras model.

    Returns:
        True if the final layer's activation is softmax or sigmoid.
    """
    layer = model.layers[-1]
    activation = getattr(layer, "activation", None)
    if activation is None:
        return False
    name = getattr(activation, "__name__", str(activation))
    return name in _PROBABILITY_ACTIVATIONS


class Task:
    """Base class of the task objects.

    Attributes:
        name: the task's name as recipes and metadata spell it.
        target_key: the batch key of the training target ("labels", ...).
        monitor: the validation quantity checkpoints and early stopping watch.
        monitor_mode: "max" or "min".
    """

    name: str = ""
    target_key: str = ""
    monitor: str = "val_loss"
    monitor_mode: str = "min"

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        raise NotImplementedError

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        raise NotImplementedError

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        """Turns a model's raw outputs into the served tensors (inside a tf.function)."""
        raise NotImplementedError

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str) -> list[str]:
        """Writes the task's evaluation figures to `out_dir`; returns their paths."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Classification(Task):
    """Image classification: one integer label per image.

    Batches are `(images float32 [B,H,W,C], labels int32 [B])`. The model ends in a
    softmax over classes, or in logits (`activation=None`).
    """

    name = "classification"
    target_key = "labels"
    monitor = "val_accuracy"
    monitor_mode = "max"

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=not ends_in_probabilities(model), name="loss")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        metrics: list[keras.metrics.Metric] = [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if num_classes > 5:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
        return metrics

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        outputs = tf.cast(outputs, tf.float32)
        probabilities = outputs if ends_in_probabilities(model) else tf.nn.softmax(outputs)
        return {
            "probabilities": probabilities,
            "class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        }

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        labels, probabilities = predict_dataset(model, dataset)
        if probabilities.ndim != 2:
            raise ValueError(
                "Expected a classifier with outputs of shape [batch, num_classes]; received "
                f"outputs of shape {probabilities.shape}.")
        if not ends_in_probabilities(model):
            probabilities = tf.nn.softmax(probabilities).numpy()
        num_classes = probabilities.shape[-1]
        predicted = probabilities.argmax(axis=-1)
        class_ids = list(range(num_classes))
        names = list(class_names) if class_names else [str(i) for i in class_ids]
        precision, recall, _, support = precision_recall_fscore_support(
            labels, predicted, labels=class_ids, zero_division=0)
        matrix = confusion_matrix(labels, predicted, labels=class_ids)
        result: dict[str, Any] = {
            "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
            "num_examples": int(len(labels)),
        }
        if num_classes > 5:
            top5 = np.argsort(-probabilities, axis=-1)[:, :5]
            result["top5_accuracy"] = float(np.mean(np.any(top5 == labels[:, None], axis=-1)))
        result["precision_per_class"] = {n: float(p) for n, p in zip(names, precision)}
        result["recall_per_class"] = {n: float(r) for n, r in zip(names, recall)}
        result["support_per_class"] = {n: int(s) for n, s in zip(names, support)}
        result["confusion_matrix"] = matrix.astype(int).tolist()
        return result

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str) -> list[str]:
        import os

        from visionkit.plot import confusion_matrix as plot_confusion_matrix

        path = os.path.join(out_dir, "confusion_matrix.png")
        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), class_names, path)
        return [path]


def predict_dataset(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Runs `model` over a batched `(images, targets)` dataset.

    Returns:
        `(targets, outputs)` as NumPy arrays concatenated over batches.
    """

    @tf.function(reduce_retracing=True)
    def forward(images):
        return model(images, training=False)

    targets, outputs = [], []
    for images, batch_targets in dataset:
        outputs.append(np.asarray(forward(images)))
        targets.append(np.asarray(batch_targets))
    if not outputs:
        raise ValueError("Cannot evaluate on an empty dataset: it yielded no batches.")
    return np.concatenate(targets), np.concatenate(outputs)


TASKS: dict[str, type[Task]] = {"classification": Classification}


def get_task(task: str | Task) -> Task:
    """Returns the task object for a name (or the object itself).

    Raises:
        ValueError: for an unknown task name, listing the known ones.
    """
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        close = difflib.get_close_matches(str(task), TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown task {task!r}.{hint} Known tasks: {sorted(TASKS)}.")
    return TASKS[task]()
