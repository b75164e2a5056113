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

from typing import Any

import keras

from visionkit.train.losses import CrossEntropyDice, DiceLoss, FocalLoss, SegmentationCrossEntropy
from visionkit.vocabulary import Task, ends_in_probabilities

__all__ = ["VISIONKIT_LOSSES", "resolve_loss"]

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
