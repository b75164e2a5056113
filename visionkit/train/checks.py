"""Model and data checked against each other before the first training step.

A model a user brings may not fit the data: ten output units for three classes, a
softmax over a single unit (its output is always 1.0, so nothing is learned and the
loss is constant), a fixed input size the images do not have, a gray-scale input for
colour images, or a segmentation output whose size differs from the masks'. Keras would
fail deep inside the first step with a shape message, or, worse, train without an
error. These checks fail first, naming the model's value, the data's and what to change.

Example:

>>> import keras, visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16))
>>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
...                           keras.layers.Dense(3, activation="softmax")])
>>> try:
...     check_model_against_data(model, data)
... except ValueError as error:
...     print(str(error).split(";")[0])
The model has 3 output units but the data has 10 classes
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from visionkit.vocabulary import output_activation

__all__ = ["check_model_against_data", "final_activation"]


def final_activation(model: keras.Model) -> str | None:
    """The name of the activation that produces the model's output ("softmax", ...), or None.

    Traced back through float32 `Activation("linear")` casts, reshapes and nested models
    (`visionkit.vocabulary.output_activation`)."""
    return output_activation(model)


def _output_shape(model: keras.Model, data: Any) -> tuple | None:
    """The model's output shape `(None, ...)`; for a subclassed model (no symbolic output)
    the shape of its output on one zero image of the data's size, or None when that output
    is not a single tensor."""
    try:
        return _single(model.output_shape, "output")
    except AttributeError:
        outputs = model(np.zeros((1, *data.input_shape), np.float32), training=False)
        if not hasattr(outputs, "shape"):
            return None
        return (None, *tuple(outputs.shape)[1:])


def _single(shapes: Any, what: str) -> tuple:
    if isinstance(shapes, list) and shapes and isinstance(shapes[0], (tuple, list)):
        if len(shapes) != 1:
            raise ValueError(f"Expected a model with one {what}; received a model with "
                             f"{len(shapes)} {what}s {shapes}. Train a model with a single "
                             f"{what} (wrap the others in a sub-model).")
        shapes = shapes[0]
    return tuple(shapes)


def check_model_against_data(model: keras.Model, data: Any) -> None:
    """Raises a ValueError when `model` cannot learn from `data` as the task defines it.

    Checks, for the task's `output_rank` (2: one score vector per image; 4: per-pixel
    scores; None: no output checks, e.g. detection):

    - one image input, whose fixed sizes (height, width, channels) match the data's
      `input_shape`;
    - the output's rank, its number of units equal to `data.num_classes`, and no
      softmax over a single unit;
    - for per-pixel outputs with a fixed size, that size equal to the images'.

    Args:
        model: a built Keras model.
        data: a `visionkit.data.Data`.

    Raises:
        ValueError: naming the model's value, the data's value and what to change.
    """
    task = data.task
    try:
        input_shape = _single(model.input_shape, "input")
    except AttributeError:  # a subclassed model has no symbolic input: its call is probed
        input_shape = (None, *data.input_shape)
    expected = (None, *data.input_shape)
    if len(input_shape) != len(expected):
        raise ValueError(f"The model takes inputs of shape {input_shape} but the data's images "
                         f"are batches of shape {expected}; build the model with "
                         f"input_shape={tuple(data.input_shape)}.")
    for axis, name in ((1, "height"), (2, "width"), (3, "channels")):
        if input_shape[axis] is not None and input_shape[axis] != expected[axis]:
            raise ValueError(
                f"The model's input {name} is {input_shape[axis]} but the data's images have "
                f"{name} {expected[axis]} (model input {input_shape}, data {expected}); build "
                f"the model with input_shape={tuple(data.input_shape)} or load the data "
                f"with image_size={tuple(input_shape[1:3])}.")
    rank = getattr(task, "output_rank", None)
    if rank is None:
        return
    output_shape = _output_shape(model, data)
    if output_shape is None:
        return
    if len(output_shape) != rank:
        kind = "[batch, classes]" if rank == 2 else "[batch, height, width, classes]"
        raise ValueError(f"A {task.name} model must output {kind}; this model outputs shape "
                         f"{output_shape}.")
    units = output_shape[-1]
    if not getattr(task, "outputs_are_classes", True):  # e.g. embedding dimensions
        return
    activation = final_activation(model)
    if data.num_classes < 2 and not getattr(task, "multi_label", False):
        raise ValueError(
            f"The data has {data.num_classes} class ({list(data.class_names)}): a "
            f"{task.name} model chooses between classes and needs at least 2 (a softmax "
            "over one class is always 1.0 and nothing is learned). The targets hold one "
            "class only; pass class_names with every class, including those these images "
            "do not show (e.g. class_names=('background', 'object')).")
    if getattr(task, "multi_label", False) and activation == "softmax":
        raise ValueError(
            "The model ends in a softmax, which makes the classes compete (their "
            "probabilities sum to 1), but multi-label data can show several classes at "
            "once; build the model with activation='sigmoid' (one independent probability "
            "per class) or activation=None (logits).")
    if units == 1 and activation == "softmax":
        raise ValueError(
            "The model ends in a softmax over 1 unit, whose output is always 1.0 (the loss "
            "cannot change and nothing is learned); use num_classes units with softmax "
            f"(the data has {data.num_classes} classes), or logits (activation=None).")
    if units == 1 and activation == "sigmoid" and data.num_classes == 2 and rank == 2 \
            and not getattr(task, "multi_label", False):
        raise ValueError(
            "The model ends in a single sigmoid unit (binary), but classification trains "
            "with one score per class (sparse cross-entropy over 2 classes); build the "
            "model with num_classes=2 and a softmax (or logits).")
    if units != data.num_classes:
        raise ValueError(
            f"The model has {units} output units but the data has {data.num_classes} classes; "
            f"build the model with num_classes={data.num_classes} (classes: "
            f"{list(data.class_names)[:10]}).")
    if rank == 4:
        for axis, name in ((1, "height"), (2, "width")):
            size = output_shape[axis]
            if size is not None and size != data.image_size[axis - 1]:
                raise ValueError(
                    f"The model's output {name} is {size} but the masks' {name} is "
                    f"{data.image_size[axis - 1]} (output {output_shape}, images "
                    f"{tuple(data.image_size)}); the model must return one score per pixel "
                    "at the input's size.")
