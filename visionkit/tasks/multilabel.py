"""Multi-label classification: any number of classes per image (a multi-hot target)."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.multilabel import multilabel_from_lists
from visionkit.data.synthetic import ShapeScenes
from visionkit.interpret.targets import ClassScore
from visionkit.tasks.explained import ExplainedTask
from visionkit.train.defaults import adaptive_defaults
from visionkit.vocabulary import ends_in_probabilities, predict_dataset, register_task

__all__ = ["MultiLabelClassification", "DEFAULT_THRESHOLD"]

# A class is predicted present when its probability is at least this.
DEFAULT_THRESHOLD = 0.5


@register_task
class MultiLabelClassification(ExplainedTask):
    """Multi-label classification: each class is present or absent on its own.

    Batches are `(images float32 [B,H,W,C], labels float32 [B,K])`, the labels
    multi-hot (1.0 where the class is present). The model ends in one sigmoid per class
    (`activation="sigmoid"`) or in logits (`activation=None`); a softmax head is refused
    before training, since it makes the classes compete. The loss is binary
    cross-entropy averaged over classes; training reports binary accuracy and the area
    under the precision-recall curve over classes (Keras's `AUC(curve="PR",
    multi_label=True)`); checkpoints keep the best validation PR-AUC.

    Evaluation (scikit-learn as the reference): per-class precision, recall and F1 at
    `threshold`, average precision per class (`average_precision_score`; undefined, NaN,
    for a class without a positive example) and `map`, their mean over the classes
    where it is defined.

    Serving: `probabilities` float32 `[B, K]` (one independent probability per class)
    and `labels` int32 `[B, K]` (1 where the probability is at least `threshold`).

    Args:
        threshold: the decision threshold. Defaults to 0.5.

    Example:

    >>> from visionkit.tasks import get_task
    >>> get_task("multilabel").target_key
    'labels'
    """

    name = "multilabel"
    target_key = "labels"
    monitor = "val_pr_auc"
    monitor_mode = "max"
    output_rank = 2
    multi_label = True
    attackable = True
    # Trains like classification (independent sigmoids).
    training_defaults = adaptive_defaults(epochs=10, augment="light", sgd=0.05)
    # Several shapes per image; the label is the set of their classes.
    shapes_per_image = (1, 3)

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"Expected 0 < threshold < 1; received threshold={threshold!r}.")
        self.threshold = float(threshold)

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        present = np.asarray(target, np.float64).reshape(-1, num_classes) > 0.5
        return present.sum(axis=0).astype(np.int64)

    def _data_from_scenes(self, scenes: ShapeScenes, per_image: tuple[int, int],
                          **split: Any) -> Any:
        # A shape may hide at most half of an earlier one, so every drawn shape shows.
        return multilabel_from_lists(
            scenes.images,
            [sorted(set(scenes.classes_of(i).tolist())) for i in range(len(scenes.images))],
            class_names=scenes.class_names, threshold=self.threshold, **split)

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        return keras.losses.BinaryCrossentropy(from_logits=not ends_in_probabilities(model),
                                               name="loss")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        return [keras.metrics.BinaryAccuracy(threshold=self.threshold, name="accuracy"),
                keras.metrics.AUC(curve="PR", multi_label=True, num_labels=num_classes,
                                  name="pr_auc")]

    def compile(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                num_classes: int, loss: Any = None, metrics: Any = None,
                jit_compile: bool = False) -> None:
        if metrics is None and not ends_in_probabilities(model):
            metrics = [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy"),
                       keras.metrics.AUC(curve="PR", multi_label=True, num_labels=num_classes,
                                         from_logits=True, name="pr_auc")]
        super().compile(model, optimizer, num_classes, loss=loss, metrics=metrics,
                        jit_compile=jit_compile)

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        outputs = tf.cast(outputs, tf.float32)
        probabilities = outputs if ends_in_probabilities(model) else tf.sigmoid(outputs)
        return {"probabilities": probabilities,
                "labels": tf.cast(probabilities >= self.threshold, tf.int32)}

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        labels, outputs = predict_dataset(model, dataset)
        if outputs.ndim != 2:
            raise ValueError("Expected a multi-label classifier with outputs of shape [batch, "
                             f"num_classes]; received outputs of shape {outputs.shape}.")
        probabilities = outputs if ends_in_probabilities(model) else \
            tf.sigmoid(outputs).numpy()
        names = list(class_names) if class_names else \
            [str(i) for i in range(probabilities.shape[-1])]
        return multilabel_scores(labels, probabilities, names, self.threshold)

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3) -> dict[str, Any]:
        probabilities = np.asarray(outputs["probabilities"], np.float64)
        present = [name for name, p in zip(class_names, probabilities) if p >= self.threshold]
        shown = ", ".join(f"{name} {p:.2f}" for name, p in zip(class_names, probabilities)
                          if p >= self.threshold) or "none"
        return {"file": file, "labels": present,
                "probabilities": {n: float(p) for n, p in zip(class_names, probabilities)},
                "summary": shown}

    def explains(self, model: keras.Model) -> bool:
        return len(model.outputs[0].shape) == 2

    def explain_target(self, model: keras.Model, target: Any = None) -> Any:
        return ClassScore(target)

    def __repr__(self) -> str:
        return f"MultiLabelClassification(threshold={self.threshold})"


def multilabel_scores(labels: np.ndarray, probabilities: np.ndarray, names: list[str],
                      threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Per-class precision/recall/F1 at `threshold`, AP per class and mAP (scikit-learn).

    Args:
        labels: multi-hot `[N, K]` (0/1).
        probabilities: `[N, K]` in 0..1.
        names: the `K` class names.
        threshold: the decision threshold.

    Returns:
        `precision_per_class`, `recall_per_class`, `f1_per_class`, `support_per_class`,
        `ap_per_class` (NaN where a class has no positive example), `map` (the mean of
        the defined APs; NaN if none), `micro_f1`, `exact_match` (fraction of images
        whose whole label set is right), `num_examples`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support

    truth = (np.asarray(labels) > 0.5).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, average=None, zero_division=0)
    micro = precision_recall_fscore_support(truth, predicted, average="micro",
                                            zero_division=0)[2]
    ap = []
    for k in range(truth.shape[1]):
        ap.append(float(average_precision_score(truth[:, k], probabilities[:, k]))
                  if truth[:, k].any() else math.nan)
    defined = [v for v in ap if not math.isnan(v)]
    return {
        "map": float(np.mean(defined)) if defined else math.nan,
        "ap_per_class": dict(zip(names, ap)),
        "precision_per_class": {n: float(v) for n, v in zip(names, precision)},
        "recall_per_class": {n: float(v) for n, v in zip(names, recall)},
        "f1_per_class": {n: float(v) for n, v in zip(names, f1)},
        "support_per_class": {n: int(v) for n, v in zip(names, support)},
        "micro_f1": float(micro),
        "exact_match": float(np.mean(np.all(truth == predicted, axis=1))) if len(truth) else 0.0,
        "threshold": float(threshold),
        "num_examples": int(len(truth)),
    }
