"""`from_arrays`: a `Data` set from in-memory NumPy arrays."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, check_pixel_values
from visionkit.data.split import split_indices
from visionkit.errors import DataWarning
from visionkit.vocabulary import SEGMENTATION_MASKS, get_task

__all__ = ["from_arrays"]


def from_arrays(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    task: str | None = None,
    image_size: tuple[int, int] | None = None,
    validation_split: float = 0.2,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    batch_size: int = 32,
    augment: object = "none",
    seed: int | None = 0,
    masks: np.ndarray | None = None,
    val_masks: np.ndarray | None = None,
) -> Data:
    """Builds a `Data` set from arrays of images and labels (or segmentation masks).

    Args:
        images: `[N, H, W]`, `[N, H, W, 1]` or `[N, H, W, 3]` raw pixels in 0..255
            (uint8 or float; the model rescales them). Grayscale is repeated to 3
            channels.
        labels: int class ids `[N]` (classification).
        class_names: names per class id. Defaults to "0", "1", ... up to the largest
            id (ids below it that no image has, as with labels counted from 1, are said
            in a `DataWarning`).
        task: the task. Defaults to "segmentation" when `masks` are given, else
            "classification".
        image_size: resize to `(height, width)`. Defaults to the arrays' own size.
        validation_split: fraction held out for validation (stratified, seeded) when no
            `val_images` are given. Defaults to 0.2.
        val_images, val_labels: an explicit validation split.
        batch_size: examples per batch. Defaults to 32.
        augment: augmentation of the train split (see `Data`). Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        masks: int class-id masks `[N, H, W]` (255 = ignore) for segmentation, instead
            of `labels`; resized with nearest neighbour (see
            `visionkit.data.masks.segmentation_from_arrays`). Defaults to None.
        val_masks: masks of `val_images`. Defaults to None.

    Returns:
        A `Data` set.

    Raises:
        ValueError: if shapes, lengths or label values do not fit, or if the images are
            not raw pixels in 0..255 (scaled to 0..1 or -1..1, 16-bit, NaN): see
            `visionkit.data.preprocessing.check_pixel_values`.

    Example:

    >>> import numpy as np, visionkit as vk
    >>> x = np.zeros((10, 8, 8, 3), np.uint8); y = np.arange(10) % 2
    >>> vk.data.from_arrays(x, y, validation_split=0.2).train_size
    8
    """
    if masks is not None or (task is not None
                             and get_task(task).target_key == SEGMENTATION_MASKS):
        from visionkit.data.masks import segmentation_from_arrays

        if masks is None or labels is not None:
            raise ValueError("Expected masks= (and no labels) for segmentation; received "
                             f"labels={'given' if labels is not None else None}, "
                             f"masks={'given' if masks is not None else None}.")
        return segmentation_from_arrays(
            images, masks, class_names=class_names, image_size=image_size,
            validation_split=validation_split, val_images=val_images, val_masks=val_masks,
            batch_size=batch_size, augment=augment, seed=seed)
    if labels is None:
        raise ValueError("Expected labels (class ids, one per image); received none.")
    task = task or "classification"
    images, labels = _check_arrays(images, labels, "images", "labels")
    if val_images is not None:
        if val_labels is None:
            raise ValueError("val_images was given without val_labels.")
        val_images, val_labels = _check_arrays(val_images, val_labels, "val_images", "val_labels")
    every = labels if val_labels is None else np.concatenate([labels, val_labels])
    if class_names is None:
        # The validation labels count too: a class only they hold is a class.
        class_names = [str(i) for i in range(int(every.max()) + 1)] if len(every) else []
        if len(every):
            _warn_absent_ids(every)
    class_names = [str(c) for c in class_names]
    for name, values in (("labels", labels), ("val_labels", val_labels)):
        if values is not None and len(values) and (values.min() < 0
                                                   or values.max() >= len(class_names)):
            raise ValueError(
                f"Expected {name} in [0, {len(class_names) - 1}] for {len(class_names)} "
                f"classes; received {name} from {values.min()} to {values.max()}.")
    if val_images is not None:
        train_x, train_y = images, labels
    else:
        train_index, val_index = split_indices(labels, validation_split, seed)
        train_x, train_y = images[train_index], labels[train_index]
        val_images, val_labels = images[val_index], labels[val_index]
    size = tuple(image_size) if image_size is not None else tuple(images.shape[1:3])
    return Data(
        task=task,
        class_names=tuple(class_names),
        image_size=size,
        train_examples=_examples(train_x, train_y, size),
        val_examples=_examples(val_images, val_labels, size),
        train_size=len(train_y),
        val_size=len(val_labels),
        batch_size=batch_size,
        augment=augment,
        seed=seed,
    )


def _warn_absent_ids(labels: np.ndarray) -> None:
    """One `DataWarning` naming the ids below the largest that no image has (labels
    counted from 1, or a class lost): they become classes of their own."""
    seen = set(np.unique(labels).tolist())
    absent = [i for i in range(int(labels.max()) + 1) if i not in seen]
    if absent:
        cause = (" (labels counted from 1? pass labels - 1)" if absent == [0] else "")
        warnings.warn(f"Class ids {absent[:10]} have no image, yet class_names default to "
                      f"'0'..'{int(labels.max())}' (one class per id up to the largest), so "
                      f"the model gets {len(absent)} class(es) it never sees{cause}. Pass "
                      "class_names= to name the classes.", DataWarning, stacklevel=3)


def _check_arrays(images, labels, images_name: str, labels_name: str):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected {images_name} of shape [N, H, W], [N, H, W, 1] or [N, H, W, 3]; "
            f"received shape {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"Expected {labels_name} of shape [{len(images)}] (one per image); received "
            f"shape {labels.shape}.")
    check_pixel_values(images, images_name)
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise ValueError(f"Expected integer class ids in {labels_name}; received dtype "
                         f"{labels.dtype} (names? pass class ids and class_names=).")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(f"Expected integer class ids in {labels_name}; received "
                             f"dtype {labels.dtype}.")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images, labels.astype(np.int32)


def _examples(images: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels})
    resize = tuple(images.shape[1:3]) != tuple(size)

    def prepare(example):
        image = tf.cast(example["images"], tf.float32)
        if resize:
            image = Preprocessing(size).resize(image)  # the resize an export serves with
        return {"images": image, "labels": example["labels"]}

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
