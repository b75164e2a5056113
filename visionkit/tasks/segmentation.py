"""Semantic segmentation: one class id per pixel (255 = ignore)."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.masks import segmentation_from_arrays
from visionkit.data.synthetic import ShapeScenes
from visionkit.export.parity import mask_parity
from visionkit.interpret.targets import SegmentationScore
from visionkit.plot import confusion_matrix as plot_confusion_matrix
from visionkit.plot.masks import overlay_mask, segmentation_grid
from visionkit.tasks.explained import ExplainedTask
from visionkit.train import segmentation_metrics as seg
from visionkit.train.defaults import adaptive_defaults
from visionkit.train.losses import CrossEntropyDice
from visionkit.train.segmentation_metrics import PixelAccuracy, SegmentationMeanIoU
from visionkit.vocabulary import IGNORE_INDEX, ends_in_probabilities, register_task

__all__ = ["Segmentation", "SEGMENTATION_PLOT_EXAMPLES", "MASK_PADDING"]

# Images drawn in the evaluation grid (image / true mask / predicted mask / overlay).
SEGMENTATION_PLOT_EXAMPLES = 4
# Served masks of a batch of differently sized images are padded with this value.
MASK_PADDING = -1


@register_task
class Segmentation(ExplainedTask):
    """Semantic segmentation: one class id per pixel.

    Batches are `(images float32 [B,H,W,C], segmentation_masks int32 [B,H,W])`, with 255
    marking pixels to ignore. The model returns per-pixel class scores `[B,H,W,K]`
    (softmax, or logits with `activation=None`). The loss is cross-entropy plus the soft
    Dice loss (`visionkit.train.losses.CrossEntropyDice`), both over the pixels that are
    not ignored: the background usually covers most pixels (77% of the embedded shapes),
    and cross-entropy alone, an average over pixels, is met first by predicting it
    everywhere, while Dice weighs every class equally, as mean IoU does. This is the
    combination segmentation_models documents (`DiceLoss() + CategoricalFocalLoss()`) and
    nnU-Net trains with; pass `loss=SegmentationCrossEntropy()` to `fit` for plain
    cross-entropy. Training reports pixel accuracy and mean IoU, and checkpoints keep the
    best validation mean IoU.

    Serving: `mask` (int32) and `probabilities` (float32) at the resolution of each image
    that was sent. The model's probabilities are resized bilinearly to the image's size,
    then `mask` is their argmax. `serving_default` gets one size per batch, so nothing is
    padded. For `serve_bytes`, images in a batch may differ in size: each image's outputs
    are resized to its own size and padded at the bottom/right to the largest height and
    width in the batch (mask with -1, probabilities with 0); the output `image_size`
    (int32 `[B, 2]`, height and width) says which part of each row is the image.

    Example:

    >>> from visionkit.tasks import get_task
    >>> get_task("segmentation").target_key
    'segmentation_masks'
    """

    name = "segmentation"
    target_key = "segmentation_masks"
    monitor = "val_mean_iou"
    monitor_mode = "max"
    output_rank = 4
    # Every image carries thousands of labelled pixels: a batch of 4 still averages the
    # loss over 16,384 of them at 64x64, with eight times the steps of 32 (Keras's
    # DeepLabV3+ example trains at 4; see `visionkit.train.defaults`).
    batch_size = 4
    attackable = True
    distillable = True
    class_count_unit = "pixels"
    prediction_files = ("_mask.png", "_overlay.png")
    # Adam decays its weights as AdamW does (see visionkit.train.defaults).
    training_defaults = adaptive_defaults(epochs=12, augment="light", sgd=0.05,
                                          weight_decay={"adam": 1e-4})
    # Several shapes per scene and the exact per-pixel class map (class 0 "background").
    shapes_per_image = (1, 3)

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        return CrossEntropyDice(from_logits=not ends_in_probabilities(model), name="loss")

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        return [PixelAccuracy(num_classes), SegmentationMeanIoU(num_classes)]

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        mask = np.asarray(target).reshape(-1)
        mask = mask[(mask != IGNORE_INDEX) & (mask >= 0)]
        return np.bincount(mask, minlength=num_classes)[:num_classes].astype(np.int64)

    def _data_from_scenes(self, scenes: ShapeScenes, per_image: tuple[int, int],
                          **split: Any) -> Any:
        # Class 0 is the background; shape class i becomes i + 1.
        return segmentation_from_arrays(
            scenes.images, scenes.class_maps(background=-1) + 1,
            class_names=("background", *scenes.class_names), **split)

    def portable_outputs(self, model: keras.Model, outputs: Any,
                         image_size: tuple[int, int]) -> dict[str, tf.Tensor]:
        # The portable graph takes images at the model's size: no resize back, the mask
        # is the argmax at that size.
        probabilities = outputs if ends_in_probabilities(model) else tf.nn.softmax(outputs)
        sizes = tf.tile(tf.constant([list(image_size)], tf.int32),
                        [tf.shape(probabilities)[0], 1])
        return {"mask": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                "probabilities": probabilities, "image_size": sizes}

    def parity(self, reference: dict[str, np.ndarray],
               served: dict[str, np.ndarray]) -> dict[str, float]:
        return mask_parity(reference, served)

    def prepare_augmented(self, batch: dict) -> dict:
        """Masks `[B,H,W]` -> `[B,H,W,1]` shifted by one, for Keras augmentation layers.

        Keras 3 layers warp `segmentation_masks` of shape `[B,H,W,1]` with nearest
        interpolation and the layer's own fill: mirrored with the image
        (`fill_mode="reflect"`, Keras's default and the presets'), or 0 with
        `fill_mode="constant"` (visionkit refuses another `fill_value`). Shifting the ids
        by one keeps 0 free for that fill, which `finish_augmented` turns into 255
        (ignore): no pixel the image does not show counts as background.
        """
        if self.target_key not in batch:
            return batch
        masks = tf.cast(batch[self.target_key], tf.int32)
        return {**batch, self.target_key: (masks + 1)[..., tf.newaxis]}

    def finish_augmented(self, batch: dict, image_size: tuple[int, int]) -> dict:
        """Back to int32 class ids `[B,H,W]`; pixels filled by a warp become 255."""
        if self.target_key not in batch:
            return batch

        shifted = tf.cast(tf.round(tf.cast(batch[self.target_key], tf.float32)), tf.int32)
        shifted = shifted[..., 0]
        masks = tf.where(shifted == 0, tf.constant(IGNORE_INDEX, tf.int32), shifted - 1)
        return {**batch, self.target_key: masks}

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        outputs = tf.cast(outputs, tf.float32)
        probabilities = outputs if ends_in_probabilities(model) else tf.nn.softmax(outputs)
        image_sizes = tf.cast(image_sizes, tf.int32)
        largest = tf.reduce_max(image_sizes, axis=0)

        @tf.autograph.experimental.do_not_convert
        def resize_one(item):
            scores, size = item
            resized = tf.image.resize(scores, size, method="bilinear")
            mask = tf.argmax(resized, axis=-1, output_type=tf.int32)
            pad = [[0, largest[0] - size[0]], [0, largest[1] - size[1]]]
            return (tf.pad(resized, [*pad, [0, 0]]),
                    tf.pad(mask, pad, constant_values=MASK_PADDING))

        num_classes = probabilities.shape[-1]
        resized, masks = tf.map_fn(
            resize_one, (probabilities, image_sizes),
            fn_output_signature=(tf.TensorSpec([None, None, num_classes], tf.float32),
                                 tf.TensorSpec([None, None], tf.int32)))
        return {"mask": masks, "probabilities": resized, "image_size": image_sizes}

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        return self.evaluate_with_examples(model, dataset, class_names)[0]

    def evaluate_with_examples(self, model: keras.Model, dataset: tf.data.Dataset,
                               class_names: list[str]) -> tuple[dict[str, Any], Any]:
        """Mean IoU, Dice and pixel accuracy, and a few images with true and predicted
        masks."""
        num_classes = int(model.outputs[0].shape[-1])
        if len(model.outputs[0].shape) != 4:
            raise ValueError("Expected a segmentation model with outputs [batch, height, "
                             f"width, classes]; received {model.outputs[0].shape}.")

        @tf.function(reduce_retracing=True, autograph=False)
        def step(images, masks):
            predicted = tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)
            return predicted, seg.confusion_matrix_tf(masks, predicted, num_classes)

        matrix = np.zeros((num_classes, num_classes), np.int64)
        count = 0
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for images, masks in dataset:
            predicted, counts = step(images, masks)
            matrix += counts.numpy()
            count += int(images.shape[0])
            if len(kept) < SEGMENTATION_PLOT_EXAMPLES:
                room = SEGMENTATION_PLOT_EXAMPLES - len(kept)
                kept += list(zip(images.numpy()[:room], masks.numpy()[:room],
                                 predicted.numpy()[:room]))
        if not count:
            raise ValueError("Cannot evaluate on an empty dataset: it yielded no batches.")
        examples = tuple(np.stack(parts) for parts in zip(*kept))
        names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        ious = seg.iou_per_class(matrix)
        dices = seg.dice_per_class(matrix)
        return {
            "mean_iou": seg.mean_iou(matrix),
            "dice": seg.mean_dice(matrix),
            "pixel_accuracy": seg.pixel_accuracy(matrix),
            "iou_per_class": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, ious)},
            "dice_per_class": {n: (None if np.isnan(v) else float(v))
                               for n, v in zip(names, dices)},
            "confusion_matrix": matrix.astype(int).tolist(),
            "num_examples": count,
        }, examples

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3, stem: str | None = None) -> dict[str, Any]:
        """Crops the served mask to the image; writes `<stem>_mask.png` and `_overlay.png`.

        The mask PNG holds the class ids as 8-bit grey levels (at the image's own size);
        the overlay blends the class colours over the image (background left as is).
        Both go to `out_dir` (default: the image's folder). The result lists the files
        and the fraction of the image's pixels per predicted class.
        """
        from PIL import Image

        height, width = (int(v) for v in np.asarray(outputs["image_size"]))
        mask = np.asarray(outputs["mask"])[:height, :width]
        folder = out_dir if out_dir is not None else os.path.dirname(os.path.abspath(file))
        os.makedirs(folder, exist_ok=True)
        stem = stem if stem is not None else os.path.splitext(os.path.basename(file))[0]
        mask_file = os.path.join(folder, f"{stem}_mask.png")
        overlay_file = os.path.join(folder, f"{stem}_overlay.png")
        Image.fromarray(mask.astype(np.uint8)).save(mask_file)
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("RGB"))
        Image.fromarray(overlay_mask(pixels, mask, len(class_names))).save(overlay_file)
        counts = np.bincount(mask.ravel(), minlength=len(class_names)) / max(mask.size, 1)
        fractions = {name: float(counts[i]) for i, name in enumerate(class_names) if counts[i]}
        shown = ", ".join(f"{name} {value:.1%}" for name, value in
                          sorted(fractions.items(), key=lambda item: -item[1]))
        return {"file": file, "mask_file": mask_file, "overlay_file": overlay_file,
                "image_size": [height, width], "class_fractions": fractions,
                "summary": f"{shown} -> {mask_file}, {overlay_file}"}

    def explains(self, model: keras.Model) -> bool:
        return len(model.outputs[0].shape) == 4

    def explain_target(self, model: keras.Model, target: Any = None) -> Any:
        """The mean probability of class `target` over the pixels predicted as it."""
        return SegmentationScore(target, from_logits=not ends_in_probabilities(model))

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str, examples: Any = None) -> list[str]:
        paths = [plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), class_names,
                                       os.path.join(out_dir, "confusion_matrix.png"),
                                       title="Pixel confusion matrix (rows: true class)")]
        if examples is not None:
            images, true_masks, predicted = examples
            paths.append(segmentation_grid(images, true_masks, predicted, class_names,
                                           os.path.join(out_dir, "segmentation_examples.png")))
        return paths
