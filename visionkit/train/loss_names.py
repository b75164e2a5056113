"""A loss given by name to `fit`: visionkit's own names, and Keras names checked first.

`fit(loss="cross_entropy_dice")` (or "segmentation_cross_entropy", "dice_loss",
"focal_loss", the class names, or the registered "visionkit>..." names) builds
visionkit's loss with `from_logits` read from the model's ending, as the task's default
does; Keras alone would not know these names. A Keras built-in name for a task whose
targets carry an ignore value (segmentation masks with 255) is refused: Keras's
"sparse_categorical_crossentropy" or "dice" would read 255 as a class (an
out-of-range label error on CPU, silent garbage on GPU) or expect one-hot masks. Any
other name, and every loss object, goes to Keras unchanged.

Example:

>>> import keras
>>> inputs = keras.Input((4, 4, 3))
>>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))   # logits
>>> from visionkit.vocabulary import get_task
>>> loss = resolve_loss("cross_entropy_dice", get_task("segmentation"), model)
>>> type(loss).__name__, loss.from_logits
('CrossEntropyDice', True)
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from visionkit.train.losses import CrossEntropyDice, DiceLoss, FocalLoss, SegmentationCrossEntropy
from visionkit.train.segmentation_metrics import (
    DiceCoefficient,
    PixelAccuracy,
    SegmentationMeanIoU,
)
from visionkit.vocabulary import Task, ends_in_probabilities

__all__ = ["VISIONKIT_LOSSES", "VISIONKIT_METRICS", "resolve_loss", "resolve_metrics"]

_CLASSES = (SegmentationCrossEntropy, DiceLoss, FocalLoss, CrossEntropyDice)


def _names(cls) -> tuple[str, ...]:
    default = cls().name
    return (default, cls.__name__, f"visionkit>{cls.__name__}")


# Every name `fit(loss=...)` understands for visionkit's losses.
VISIONKIT_LOSSES: dict[str, type] = {name.lower(): cls for cls in _CLASSES
                                     for name in _names(cls)}


def resolve_loss(loss: Any, task: Task, model: keras.Model) -> Any:
    """The loss `fit` compiles with, for a loss given by name.

    Args:
        loss: None (the task's default), a loss object or function (returned as is), or
            a name.
        task: the data's task.
        model: the model trained (its ending decides `from_logits`).

    Returns:
        `loss` itself, or visionkit's loss for one of its names (`VISIONKIT_LOSSES`).

    Raises:
        ValueError: naming the loss, when a Keras built-in name is given for a task whose
            default loss leaves out an ignore value (segmentation's 255), with the
            visionkit names to use instead.
    """
    if not isinstance(loss, str):
        return loss
    cls = VISIONKIT_LOSSES.get(loss.strip().lower())
    if cls is not None:
        return cls(from_logits=not ends_in_probabilities(model))
    try:
        default = task.loss(model)
    except NotImplementedError:  # tasks that compile their own losses (detection)
        return loss
    ignore = getattr(default, "ignore_index", None)
    if ignore is None:
        return loss
    try:
        resolved = keras.losses.get(loss)
    except (ValueError, TypeError):
        return loss  # Keras names the unknown identifier itself
    module = getattr(resolved, "__module__", "") or getattr(type(resolved), "__module__", "")
    if not module.startswith("keras."):
        return loss  # the user's own registered loss
    names = sorted({cls().name for cls in _CLASSES})
    raise ValueError(
        f"loss={loss!r} is Keras's, which does not leave out the ignore value {ignore} of "
        f"the {task.name} targets (it reads {ignore} as a class, or expects one-hot "
        f"targets). Use one of visionkit's {names} (the same losses over the pixels that "
        f"are not {ignore}), or pass a loss object, e.g. "
        f"keras.losses.SparseCategoricalCrossentropy(ignore_class={ignore}).")


_METRIC_CLASSES = (SegmentationMeanIoU, DiceCoefficient, PixelAccuracy)

# Every name `fit(metrics=[...])` understands for visionkit's segmentation metrics.
# The default names are read from the signatures: building a metric at import would
# start TensorFlow's runtime, which a multi-worker strategy must be created before.
VISIONKIT_METRICS: dict[str, type] = {
    name.lower(): cls for cls in _METRIC_CLASSES
    for name in (inspect.signature(cls.__init__).parameters["name"].default, cls.__name__,
                 f"visionkit>{cls.__name__}")}

# Keras metric names that count every pixel, the ignored ones included.
_KERAS_PIXEL_METRICS = ("accuracy", "acc", "sparse_categorical_accuracy",
                        "sparse_top_k_categorical_accuracy", "mean_io_u", "meaniou")


def resolve_metrics(metrics: Any, task: Task, model: keras.Model,
                    num_classes: int) -> Any:
    """The metrics `fit` compiles with, for metrics given by name.

    visionkit's segmentation metric names ("mean_iou", "dice", "pixel_accuracy", the class
    and registered names) build its metrics for `num_classes`. For a task whose default
    loss leaves out an ignore value, Keras's accuracy names are refused: they count the
    ignored pixels (never right) and lower the figure silently. Everything else goes
    to Keras unchanged.

    Args:
        metrics: None (the task's), or a sequence of metric objects and names.
        task: the data's task.
        model: the model trained.
        num_classes: the data's number of classes.

    Returns:
        `metrics` with visionkit's names replaced by its metrics.

    Raises:
        ValueError: naming the metric, for a Keras accuracy name on data with an ignore
            value.
    """
    if metrics is None or isinstance(metrics, (str, dict)):
        return metrics
    try:
        ignore = getattr(task.loss(model), "ignore_index", None)
    except NotImplementedError:
        ignore = None
    resolved = []
    for metric in metrics:
        if isinstance(metric, str):
            cls = VISIONKIT_METRICS.get(metric.strip().lower())
            if cls is not None:
                resolved.append(cls(int(num_classes)))
                continue
            if ignore is not None and metric.strip().lower() in _KERAS_PIXEL_METRICS:
                names = sorted({cls(2).name for cls in _METRIC_CLASSES})
                raise ValueError(
                    f"metrics=[{metric!r}] is Keras's, which counts the pixels marked "
                    f"{ignore} (ignore) as wrong and lowers the figure; use visionkit's "
                    f"{names}, which leave them out.")
        resolved.append(metric)
    return resolved
