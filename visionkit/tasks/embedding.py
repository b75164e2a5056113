"""Metric learning: a model maps each image to an embedding; distances mean similarity."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.train.defaults import adaptive_defaults
from visionkit.train.metric_losses import TripletLoss
from visionkit.train.retrieval_metrics import recall_at_k, verification_auc
from visionkit.train.triplet_coverage import AnchorsWithTriplets, TripletCoverage
from visionkit.vocabulary import Task, predict_dataset, register_task

__all__ = ["Embedding", "RECALL_KS"]

# recall@k reported by evaluation (k = 1 is the headline figure of retrieval papers).
RECALL_KS = (1, 5)


@register_task
class Embedding(Task):
    """Metric learning: images in, L2-normalised embeddings out.

    Batches are `(images float32 [B,H,W,C], labels int32 [B])`, the labels class ids
    used only to tell which pairs are alike; batches of P classes x K images
    (`visionkit.data.class_balanced`) give the online losses their pairs. The default
    loss is the batch-hard triplet loss (`visionkit.train.metric_losses.TripletLoss`);
    pass `loss=ContrastiveLoss()` or a semi-hard `TripletLoss` to `fit` for the others.
    Checkpoints keep the lowest validation loss. Training logs `anchors_with_triplets`,
    the share of images whose batch held a positive and a negative for them, and warns
    once when it falls below 1 (those images added 0 to the loss).

    Evaluation (on any classes, typically ones never trained on): `recall_at_1`,
    `recall_at_5` and `verification_auc` (see `visionkit.train.retrieval_metrics`).

    Serving: `embeddings` float32 `[B, D]`, L2-normalised (unit length), for retrieval
    (nearest neighbours) or verification (distance below a threshold).

    Example:

    >>> from visionkit.tasks import get_task
    >>> get_task("embedding").target_key
    'labels'
    """

    name = "embedding"
    target_key = "labels"
    monitor = "val_loss"
    monitor_mode = "min"
    output_rank = 2
    # The model's output units are embedding dimensions, not one per class.
    outputs_are_classes = False
    # Trains on class-balanced P x K batches (visionkit.data.class_balanced) at
    # classification's rates; no preset augmentation.
    training_defaults = adaptive_defaults(epochs=10, augment="none", sgd=0.05)

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        return np.bincount(np.asarray(target, np.int64).reshape(-1),
                           minlength=num_classes)[:num_classes]

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        return TripletLoss(mining="batch_hard", name="loss")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        # The share of anchors online mining could use (1 for P x K batches).
        return [AnchorsWithTriplets()]

    def callbacks(self, data: Any) -> list[keras.callbacks.Callback]:
        return [TripletCoverage()]

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        outputs = tf.cast(outputs, tf.float32)
        return {"embeddings": tf.math.l2_normalize(outputs, axis=-1)}

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        labels, embeddings = predict_dataset(model, dataset)
        if embeddings.ndim != 2:
            raise ValueError("Expected an embedding model with outputs of shape [batch, "
                             f"dimensions]; received outputs of shape {embeddings.shape}.")
        result: dict[str, Any] = {"num_examples": int(len(labels)),
                                  "num_classes": int(len(np.unique(labels)))}
        skipped = []
        for k in RECALL_KS:
            if k <= len(labels) - 1:
                with warnings.catch_warnings(record=True):  # said once, below
                    warnings.simplefilter("always")
                    result[f"recall_at_{k}"] = recall_at_k(embeddings, labels, k)
            else:
                skipped.append(f"recall_at_{k} (needs more than {k} images)")
        classes, counts = np.unique(labels, return_counts=True)
        if (counts < 2).any():
            skipped.append(f"{int((counts < 2).sum())} images from recall@k, alone in their "
                           f"class ({classes[counts < 2][:5].tolist()})")
        if result["num_classes"] > 1 and result["num_classes"] < len(labels):
            result["verification_auc"] = verification_auc(embeddings, labels)
        else:
            skipped.append("verification_auc (needs same-class and different-class pairs)")
        if skipped:
            warnings.warn(f"Embedding evaluation on {len(labels)} images of "
                          f"{result['num_classes']} classes left out: {'; '.join(skipped)}.",
                          stacklevel=2)
        return result

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3) -> dict[str, Any]:
        # top_k lists classes; an embedding has none (the base signature takes it).
        embedding = np.asarray(outputs["embeddings"], np.float64)
        return {"file": file, "embedding": embedding.tolist(),
                "summary": f"embedding of {embedding.shape[-1]} dimensions"}
