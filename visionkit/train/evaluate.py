"""`evaluate`: a model's task metrics on a split, as a plain dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from visionkit.attacks import parse_attack
from visionkit.data.pipeline import Data
from visionkit.train.adversarial import adversarial_dataset, check_attack_task
from visionkit.train.auxiliary import main_head
from visionkit.vocabulary import Task, get_task

__all__ = ["evaluate", "evaluate_with_examples"]


def evaluate(model: keras.Model, data: Data | tf.data.Dataset, *,
             task: str | Task | None = None,
             class_names: Sequence[str] | None = None, split: str = "val",
             attack: dict[str, Any] | None = None, seed: int | None = 0) -> dict[str, Any]:
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
        attack: evaluate on adversarial copies of the images instead (robust accuracy):
            `{"method": "pgd" | "fgsm", "epsilon": 8, "steps": 10, "step_size": None,
            "norm": "inf" | "2", "random_start": True}`, in pixel units (0..255), each
            image attacked against the task's loss and its true target
            (`visionkit.attacks`, Madry et al. 2018). Classification, multi-label and
            segmentation. Defaults to None (clean images).
        seed: seed of the attack's random starts. Defaults to 0.

    Returns:
        A dict. Classification: `accuracy`, `top5_accuracy` (more than 5 classes),
        `precision_per_class`, `recall_per_class`, `support_per_class`,
        `confusion_matrix` (rows true, columns predicted), `num_examples`.
        Segmentation (pixels marked 255 ignored): `mean_iou`, `iou_per_class`, `dice`,
        `dice_per_class`, `pixel_accuracy`, the pixel `confusion_matrix`,
        `num_examples`. With `attack`, the same metrics on the attacked images and
        `attack` (its settings).

    Raises:
        ValueError: if `data` has no such split (or `split` is not a split name), or
            for bad `attack` settings (naming the key) or a task it does not support.

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16)).take(32, 32)
    >>> model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    >>> sorted(vk.train.evaluate(model, data))[:2]
    ['accuracy', 'confusion_matrix']
    """
    return evaluate_with_examples(model, data, task=task, class_names=class_names,
                                  split=split, attack=attack, seed=seed)[0]


def evaluate_with_examples(model: keras.Model, data: Data | tf.data.Dataset, *,
                           task: str | Task | None = None,
                           class_names: Sequence[str] | None = None, split: str = "val",
                           attack: dict[str, Any] | None = None, seed: int | None = 0
                           ) -> tuple[dict[str, Any], Any]:
    """`evaluate`'s metrics and the examples the task's figures draw (or None).

    Same arguments and errors as `evaluate`; `vk.train.fit` hands the examples to the
    task's `plot_evaluation`.
    """
    model = main_head(model)  # GoogLeNet's auxiliary heads left out
    if isinstance(data, Data):
        batches = data.split(split)
        if batches is None and split == "test":
            raise ValueError("The data set has no test split to evaluate on; give the source "
                             "one (e.g. a test/ folder, test_directory=, a test list or JSON, "
                             "or 'test:' in data.yaml).")
        if batches is None:
            raise ValueError("The data set has no validation split to evaluate on; pass "
                             "a dataset (e.g. data.train) or build it with validation_split > 0.")
        return _evaluate(data.task, model, batches, list(data.class_names), attack, seed)
    if isinstance(data, tf.data.Dataset):
        resolved = get_task(task or "classification")
        return _evaluate(resolved, model, data, list(class_names or []), attack, seed)
    raise TypeError(f"Expected a visionkit Data set or a tf.data.Dataset; received "
                    f"{type(data).__name__}.")


def _evaluate(task: Task, model: keras.Model, batches: tf.data.Dataset,
              class_names: list[str], attack: dict[str, Any] | None,
              seed: int | None) -> tuple[dict[str, Any], Any]:
    if attack is None:
        return task.evaluate_with_examples(model, batches, class_names)
    settings = parse_attack(attack, "attack")
    check_attack_task(task, "evaluate(attack=...)")
    attacked = adversarial_dataset(model, batches, settings, task.loss(model), seed)
    metrics, examples = task.evaluate_with_examples(model, attacked, class_names)
    return {**metrics, "attack": settings.describe()}, examples
