"""Image classification: one integer label per image."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.arrays import from_arrays
from visionkit.data.synthetic import ShapeScenes
from visionkit.export.parity import class_parity
from visionkit.interpret.targets import ClassScore
from visionkit.plot import confusion_matrix as plot_confusion_matrix
from visionkit.tasks.explained import ExplainedTask
from visionkit.train.defaults import adaptive_defaults
from visionkit.vocabulary import ends_in_probabilities, predict_dataset, register_task

__all__ = ["Classification"]


@register_task
class Classification(ExplainedTask):
    """Image classification: one integer label per image.

    Batches are `(images float32 [B,H,W,C], labels int32 [B])`. The model ends in a
    softmax over classes, or in logits (`activation=None`).
    """

    name = "classification"
    target_key = "labels"
    monitor = "val_accuracy"
    monitor_mode = "max"
    output_rank = 2
    single_label = True
    attackable = True
    distillable = True
    training_defaults = adaptive_defaults(epochs=10, augment="light", sgd=0.05)
    # One shape per image, its class as the label.
    shapes_per_image = (1, 1)

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=not ends_in_probabilities(model), name="loss")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        metrics: list[keras.metrics.Metric] = [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if num_classes > 5:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
        return metrics

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        return np.bincount(np.asarray(target, np.int64).reshape(-1),
                           minlength=num_classes)[:num_classes]

    def shapes_data(self, class_names: tuple[str, ...], n: int, image_size: tuple[int, int],
                    seed: int | None, noise: float, shapes_per_image: tuple[int, int] | None,
                    validation_split: float, batch_size: int, augment: Any) -> Any:
        # One shape per image whatever shapes_per_image says (see `vk.data.shapes`).
        if len(class_names) < 2:
            raise ValueError("Expected at least 2 shape classes for classification; received "
                             f"classes={list(class_names)!r}.")
        return super().shapes_data(class_names, n, image_size, seed, noise,
                                   self.shapes_per_image, validation_split, batch_size, augment)

    def _data_from_scenes(self, scenes: ShapeScenes, per_image: tuple[int, int],
                          **split: Any) -> Any:
        return from_arrays(scenes.images, scenes.instance_classes,
                           class_names=scenes.class_names, **split)

    def parity(self, reference: dict[str, np.ndarray],
               served: dict[str, np.ndarray]) -> dict[str, float]:
        return class_parity(reference, served)

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

        if isinstance(model.layers[-1], keras.layers.UnitNormalization):
            raise ValueError(
                f"Model {model.name!r} outputs unit-length embeddings, not class scores; "
                "evaluate it with task='embedding' (recall@k, verification AUC) or on "
                "vk.data.class_balanced(...) data.")
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

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3) -> dict[str, Any]:
        """The predicted class, its probability and the `top_k` most probable classes."""
        probabilities = np.asarray(outputs["probabilities"])
        class_id = int(outputs["class_id"])
        order = np.argsort(-probabilities, kind="stable")[:min(int(top_k), len(probabilities))]
        top = [{"class_id": int(i), "class_name": _name(class_names, int(i)),
                "probability": float(probabilities[i])} for i in order]
        return {"file": file, "class_id": class_id,
                "class_name": _name(class_names, class_id),
                "probability": float(probabilities[class_id]), "top": top}

    def explains(self, model: keras.Model) -> bool:
        return len(model.outputs[0].shape) == 2

    def explain_target(self, model: keras.Model, target: Any = None) -> Any:
        return ClassScore.for_model(model, target)

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str, examples: Any = None) -> list[str]:
        path = os.path.join(out_dir, "confusion_matrix.png")
        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), class_names, path)
        return [path]


def _name(class_names: list[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
