"""Object detection: boxes and classes per image, served after non-maximum suppression."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.boxes import clip_box_batch
from visionkit.data.detection import detection_from_arrays
from visionkit.data.synthetic import ShapeScenes
from visionkit.export.parity import detection_parity
from visionkit.export.portable import portable_detections
from visionkit.interpret.targets import DetectionScore
from visionkit.models.detection import (
    compile_detector,
    decode,
    forward_function,
    is_detector,
    is_retinanet,
)
from visionkit.models.detection.anchors import anchor_centres
from visionkit.plot.boxes import draw_detections, ground_truth_vs_predictions
from visionkit.tasks.explained import ExplainedTask
from visionkit.train.callbacks import MeanAveragePrecisionCallback
from visionkit.train.defaults import adaptive_defaults
from visionkit.train.detection_metrics import coco_map
from visionkit.vocabulary import register_task

__all__ = ["Detection"]

# Validation images drawn into the ground truth vs predictions figure.
PLOTTED_IMAGES = 8
# Detections drawn in figures need at least this score.
DRAW_SCORE_THRESHOLD = 0.3


@register_task
class Detection(ExplainedTask):
    """Object detection with the YOLOv8 or RetinaNet detectors of `vk.models`.

    Batches are `(images float32 [B,H,W,3], {"boxes": float32 [B,N,4] xyxy pixels,
    "labels": int32 [B,N]})`, padded with -1. The detectors read these targets and hand
    keras-cv its `"classes"` key at the model's edge; they compile with their own box and
    classification losses (`compile`). Served outputs run the head's decoding and
    non-maximum suppression in the graph and give boxes in pixels of the image sent.

    Args:
        map_every: with a validation split, `vk.train.fit` reports `val_map` and
            `val_map50` every `map_every` epochs (0 turns it off). Defaults to 5.
    """

    name = "detection"
    target_key = "bounding_boxes"
    monitor = "val_loss"
    monitor_mode = "min"
    bounding_box_format = "xyxy"
    # NMS runs per image in a portable export's graph.
    portable_batch_size = 1
    class_count_unit = "objects"
    prediction_files = ("_detections.png",)
    # 20 epochs at adam 2e-3 without augmentation: the shapes recipe measured mAP@.5 0.74
    # in 20 epochs (boxes that leave the image are dropped by translation).
    # Batch-norm statistics stay Keras's moving averages (precise_bn=False): the 20-epoch
    # default run (mAP@.5 0.597) was measured with them and not yet with PreciseBN.
    training_defaults = adaptive_defaults(epochs=20, augment="none", precise_bn=False,
                                          adam=2e-3, adamw=2e-3, sgd=0.01)
    # Several shapes per scene, each with its xyxy box; padded with -1 to the maximum.
    shapes_per_image = (1, 4)

    def __init__(self, map_every: int = 5) -> None:
        self.map_every = int(map_every)

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        raise NotImplementedError("Detectors compile with their own box and classification "
                                  "losses; use Detection.compile.")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        return []

    def compile(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                num_classes: int, loss: Any = None, metrics: Any = None,
                jit_compile: bool = False) -> None:
        if metrics:
            raise ValueError("Detectors take no compile-time metrics; mAP is computed by "
                             "vk.train.evaluate and reported every `map_every` epochs. "
                             f"Received metrics={metrics!r}.")
        box_loss, classification_loss = (loss if isinstance(loss, (tuple, list))
                                         else (None, None))
        compile_detector(model, optimizer, jit_compile=jit_compile, box_loss=box_loss,
                         classification_loss=classification_loss)

    def finish_augmented(self, batch: dict, image_size: tuple[int, int]) -> dict:
        targets = batch.get(self.target_key)
        if targets is None:
            return batch
        boxes, labels = clip_box_batch(targets["boxes"], targets["labels"], image_size)
        return {**batch, self.target_key: {"boxes": boxes, "labels": labels}}

    def serving_outputs(self, outputs: Any, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        detections = decode(model, outputs)
        height, width = model.input_shape[1:3]
        sizes = tf.cast(image_sizes, tf.float32)  # [B, 2] (height, width) of the sent images
        scale = tf.stack([sizes[:, 1] / width, sizes[:, 0] / height,
                          sizes[:, 1] / width, sizes[:, 0] / height], axis=-1)[:, None, :]
        limit = tf.stack([sizes[:, 1], sizes[:, 0], sizes[:, 1], sizes[:, 0]],
                         axis=-1)[:, None, :]
        boxes = tf.clip_by_value(detections["boxes"] * scale, 0.0, limit)
        valid = detections["classes"] >= 0
        return {"boxes": tf.where(valid[..., None], boxes, -1.0),
                "scores": detections["scores"], "classes": detections["classes"],
                "num_detections": detections["num_detections"]}

    def predict(self, model: keras.Model, dataset: tf.data.Dataset
                ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]],
                           list[np.ndarray]]:
        """Ground truth, detections and images of every example of a batched dataset."""
        forward = forward_function(model)
        truths, guesses, images_seen = [], [], []
        for images, targets in dataset:
            result = {k: v.numpy() for k, v in forward(tf.cast(images, tf.float32)).items()}
            boxes, labels = targets["boxes"].numpy(), targets["labels"].numpy()
            for index in range(len(boxes)):
                keep = labels[index] >= 0
                truths.append({"boxes": boxes[index][keep], "labels": labels[index][keep]})
                count = int(result["num_detections"][index])
                guesses.append({"boxes": result["boxes"][index][:count],
                                "scores": result["scores"][index][:count],
                                "classes": result["classes"][index][:count]})
                if len(images_seen) < PLOTTED_IMAGES:
                    images_seen.append(images[index].numpy())
        if not truths:
            raise ValueError("Cannot evaluate on an empty dataset: it yielded no batches.")
        return truths, guesses, images_seen

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        return self.evaluate_with_examples(model, dataset, class_names)[0]

    def evaluate_with_examples(self, model: keras.Model, dataset: tf.data.Dataset,
                               class_names: list[str]) -> tuple[dict[str, Any], Any]:
        """COCO mAP (pycocotools) and a few images with their true and predicted boxes."""
        truths, guesses, images = self.predict(model, dataset)
        result = coco_map(truths, guesses, class_names=class_names or None)
        result["num_examples"] = result.pop("num_images")
        examples = (np.asarray(images, np.uint8), truths[:len(images)],
                    guesses[:len(images)])
        return result, examples

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str, examples: Any = None) -> list[str]:
        if examples is None or not len(examples[0]):
            return []
        path = os.path.join(out_dir, "detections.png")
        ground_truth_vs_predictions(*examples, class_names, path,
                                    score_threshold=DRAW_SCORE_THRESHOLD)
        return [path]

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3, stem: str | None = None) -> dict[str, Any]:
        """Lists the detections and draws them into `<stem>_detections.png`.

        The PNG (in `out_dir`, default: the image's folder) shows the boxes with class
        names and scores over the image; the result lists each detection's `box` (xyxy
        pixels of the image sent), `class_id`, `class_name` and `score`.
        """
        from PIL import Image

        count = int(outputs["num_detections"])
        boxes = np.asarray(outputs["boxes"])[:count]
        classes = np.asarray(outputs["classes"])[:count]
        scores = np.asarray(outputs["scores"])[:count]
        folder = out_dir if out_dir is not None else os.path.dirname(os.path.abspath(file))
        os.makedirs(folder, exist_ok=True)
        stem = stem if stem is not None else os.path.splitext(os.path.basename(file))[0]
        drawing = os.path.join(folder, f"{stem}_detections.png")
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("RGB"))
        draw_detections(pixels, boxes, classes, class_names, scores=scores, path=drawing,
                        score_threshold=DRAW_SCORE_THRESHOLD)
        detections = [{"box": [float(v) for v in box], "class_id": int(class_id),
                       "class_name": class_names[class_id] if 0 <= class_id < len(class_names)
                       else str(class_id), "score": float(score)}
                      for box, class_id, score in zip(boxes, classes, scores)]
        shown = [d for d in detections if d["score"] >= DRAW_SCORE_THRESHOLD]
        listed = ", ".join(f"{d['class_name']} {d['score']:.2f}" for d in shown) or "nothing"
        return {"file": file, "detections": detections, "drawing": drawing,
                "summary": f"{listed} (score >= {DRAW_SCORE_THRESHOLD}) -> {drawing}"}

    def explains(self, model: keras.Model) -> bool:
        return is_detector(model)

    def explain_target(self, model: keras.Model, target: Any = None) -> Any:
        """The highest pre-NMS score of class `target` (None: the top-scoring class).

        `target` may also be a dict `{"class_id": ..., "box": [x1, y1, x2, y2]}`: then
        only the anchors whose centre lies in the box (pixels of the model's input) count.
        """
        options = dict(target) if isinstance(target, dict) else {"class_id": target}
        unknown = sorted(set(options) - {"class_id", "box"})
        if unknown:
            raise ValueError(f"Expected a detection target as a class id or a dict with keys "
                             f"'class_id' and 'box'; received keys {unknown}.")
        retinanet = is_retinanet(model)
        return DetectionScore(options.get("class_id"), box=options.get("box"),
                              anchor_centres=anchor_centres(model),
                              from_logits=retinanet,
                              scores_key="classification" if retinanet else "classes")

    def callbacks(self, data: Any) -> list[keras.callbacks.Callback]:
        if self.map_every < 1 or getattr(data, "val", None) is None:
            return []
        return [MeanAveragePrecisionCallback(data.val, list(data.class_names), self.predict,
                                             self.map_every)]

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        labels = np.asarray(target["labels"]).reshape(-1)
        labels = labels[labels >= 0]  # rows past the boxes hold BOX_PADDING (-1)
        return np.bincount(labels, minlength=num_classes)[:num_classes].astype(np.int64)

    def _data_from_scenes(self, scenes: ShapeScenes, per_image: tuple[int, int],
                          **split: Any) -> Any:
        return detection_from_arrays(
            scenes.images, [scenes.boxes_of(i) for i in range(len(scenes.images))],
            [scenes.classes_of(i) for i in range(len(scenes.images))], scenes.class_names,
            max_boxes=int(per_image[1]), **split)

    def portable_outputs(self, model: keras.Model, outputs: Any,
                         image_size: tuple[int, int]) -> dict[str, tf.Tensor]:
        return portable_detections(model, outputs)

    def parity(self, reference: dict[str, np.ndarray],
               served: dict[str, np.ndarray]) -> dict[str, float]:
        return detection_parity(reference, served)

    def __repr__(self) -> str:
        return f"Detection(map_every={self.map_every})"
