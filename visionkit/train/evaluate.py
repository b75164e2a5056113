"""`evaluate`: a model's task metrics on a split, as a plain dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from visionkit.data.pipeline import Data
from visionkit.tasks import Task, get_task
from visionkit.train.auxiliary import main_head

__all__ = ["evaluate"]


def evaluate(model: keras.Model, data: Data | tf.data.Dataset, *,
             task: str | Task | None = None,
             class_names: Sequence[str] | None = None, split: str = "val") -> dict[str, Any]:
    """Evaluates `model` with its task's metrics.

    Args:
        model: the model. A model with auxiliary classifiers (GoogLeNet's dict of
            "predictions", "aux1", "aux2") is evaluated on its "predictions" head.
        data: a `Data` set (its `split` is used) or a batched dataset of
            `(images, targets)`.
        task: the task when `data` is a dataset. Defaults to "classification".
        class_names: class names when `data` is a dataset.
        split: the split of a `Data` set: "val", "test" (the held-out split the user
            gave) or "train". Defaults to "val".

    Returns:
        A dict. Classification: `accuracy`, `top5_accuracy` (more than 5 classes),
        `precision_per_class`, `recall_per_class`, `support_per_class`,
        `confusion_matrix` (rows true, columns predicted), `num_examples`.
        Segmentation (pixels marked 255 ignored): `mean_iou`, `iou_per_class`, `dice`,
        `dice_per_class`, `pixel_accuracy`, the pixel `confusion_matrix`,
        `num_examples`.

    Raises:
        ValueError: if `data` has no such split (or `split` is not a split name).

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16)).take(32, 32)
    >>> model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    >>> sorted(vk.train.evaluate(model, data))[:2]
    ['accuracy', 'confusion_matrix']
    """
    model = main_head(model)
    if isinstance(data, Data):
        batches = data.split(split)
        if batches is None and split == "test":
            raise ValueError("The data set has no test split to evaluate on; give the source "
                             "one (e.g. a test/ folder, test_directory=, a test list or JSON, "
                             "or 'test:' in data.yaml).")
        if batches is None:
            raise ValueError("The data set has no validation split to evaluate on; pass "
                             "a dataset (e.g. data.train) or build it with validation_split > 0.")
        return data.task.evaluate(model, batches, list(data.class_names))
    if isinstance(data, tf.data.Dataset):
        resolved = get_task(task or "classification")
        return resolved.evaluate(model, data, list(class_names or []))
    raise TypeError(f"Expected a visionkit Data set or a tf.data.Dataset; received "
                    f"{type(data).__name__}.")
