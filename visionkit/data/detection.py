"""Detection data sets from arrays or from annotated image files.

Both builders produce examples in the batch vocabulary of DESIGN.md: `images` float32
`[H, W, 3]` in 0..255 at the target size and `bounding_boxes = {"boxes": float32
[N, 4] xyxy pixels of the resized image, "labels": int32 [N]}`, padded with -1 to a
fixed `N` (`max_boxes`) so that examples batch.

Example:

>>> import numpy as np
>>> images = np.zeros((4, 32, 32, 3), np.uint8)
>>> boxes = [np.array([[2., 2., 10., 12.]])] * 4
>>> data = detection_from_arrays(images, boxes, [np.array([0])] * 4, ["thing"],
...                              validation_split=0.25)
>>> images, targets = next(iter(data.val))
>>> targets["boxes"].shape.as_list(), targets["labels"].numpy().tolist()
([1, 1, 4], [[0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from visionkit.data.boxes import PAD_VALUE, pad_boxes
from visionkit.data.decoding import FileDecoder
from visionkit.data.given_splits import assign_splits
from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, check_pixel_values
from visionkit.data.split import split_indices
from visionkit.data.transforms import crop_boxes

__all__ = ["detection_from_arrays", "detection_from_files", "stratum_of"]


def stratum_of(labels: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, the label the split stratifies by: its first box's class (or -1)."""
    return np.asarray([int(np.asarray(lab).reshape(-1)[0]) if np.size(lab) else -1
                       for lab in labels], np.int64)


def _max_boxes(labels: Sequence[np.ndarray], max_boxes: int | None) -> int:
    most = max((int(np.size(lab)) for lab in labels), default=0)
    if max_boxes is None:
        return max(most, 1)
    if int(max_boxes) < most:
        raise ValueError(f"Expected max_boxes >= the most boxes of any image ({most}); "
                         f"received max_boxes={max_boxes}.")
    return int(max_boxes)


def detection_from_arrays(images: np.ndarray, boxes: Sequence[np.ndarray],
                          labels: Sequence[np.ndarray], class_names: Sequence[str],
                          validation_split: float = 0.2, batch_size: int = 32,
                          augment: object = "none", seed: int | None = 0,
                          max_boxes: int | None = None) -> Data:
    """A detection `Data` set from images already at their final size.

    Args:
        images: uint8 or float `[N, H, W, 3]` pixels 0..255.
        boxes: per image, float `[k_i, 4]` xyxy pixels.
        labels: per image, int `[k_i]` class ids.
        class_names: names per class id.
        validation_split: held-out fraction (stratified by each image's first box).
            Defaults to 0.2.
        batch_size: examples per batch. Defaults to 32.
        augment: augmentation of the train split. Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        max_boxes: rows per image. Defaults to the most boxes of any image.

    Returns:
        A detection `Data` set.

    Raises:
        ValueError: for shapes or lengths that do not fit, or images that are not raw
            pixels in 0..255 (see `visionkit.data.preprocessing.check_pixel_values`).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or not len(images) == len(boxes) == len(labels):
        raise ValueError("Expected images [N, H, W, 3] with one boxes and one labels array "
                         f"per image; received images {images.shape}, {len(boxes)} boxes "
                         f"arrays and {len(labels)} labels arrays.")
    check_pixel_values(images)
    rows = _max_boxes(labels, max_boxes)
    padded_boxes, padded_labels = pad_boxes(boxes, labels, rows)
    train, val = split_indices(stratum_of(labels), validation_split, seed)

    def examples(index: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({
            "images": images[index].astype(np.float32),
            "bounding_boxes": {"boxes": padded_boxes[index], "labels": padded_labels[index]},
        })

    return Data(task="detection", class_names=tuple(class_names),
                image_size=tuple(images.shape[1:3]), train_examples=examples(train),
                val_examples=examples(val) if len(val) else None, train_size=len(train),
                val_size=len(val), batch_size=batch_size, augment=augment, seed=seed)


def detection_from_files(paths: Sequence[str], boxes: Sequence[np.ndarray],
                         labels: Sequence[np.ndarray], class_names: Sequence[str],
                         image_size: tuple[int, int], validation_split: float = 0.2,
                         batch_size: int = 32, augment: object = "none",
                         seed: int | None = 0, max_boxes: int | None = None,
                         cache: bool | str = False, splits: Sequence[str] | None = None,
                         orientations: Sequence[int] | None = None,
                         source: str = "detection files") -> Data:
    """A detection `Data` set from image files and boxes normalized to 0..1.

    Files are read and decoded inside tf.data after shuffling (the shuffle buffer holds
    paths); each image is resized to `image_size` and its boxes scaled with it.

    Args:
        paths: image files.
        boxes: per image, float `[k_i, 4]` xyxy as fractions of the image's width and
            height (already checked and clipped by the source).
        labels: per image, int `[k_i]` class ids.
        class_names: names per class id.
        image_size: `(height, width)` the images are resized to.
        validation_split, batch_size, augment, seed, max_boxes: as for
            `detection_from_arrays`.
        cache: as for `Data`. Defaults to False.
        splits: per image, the split the user gave ("train", "val" or "test"), used
            exactly; None holds out a seeded random `validation_split` (printed).
            Defaults to None.
        orientations: per image, the EXIF orientation (1..8) to turn it upright by; the
            boxes are fractions of the turned (displayed) image. Defaults to all 1.
        source: names the data set in the printed split message.

    Returns:
        A detection `Data` set (with `test` when `splits` holds "test").
    """
    height, width = (int(v) for v in image_size)
    rows = _max_boxes(labels, max_boxes)
    padded_boxes, padded_labels = pad_boxes(boxes, labels, rows)
    chosen = assign_splits(len(paths), stratum_of(labels), splits, validation_split, seed,
                           source)
    train, val, test = chosen["train"], chosen["val"], chosen["test"]
    paths = np.asarray([str(p) for p in paths])
    turns = np.asarray(orientations if orientations is not None else [1] * len(paths),
                       np.int32)
    turned = bool(np.any(turns != 1))

    def records(index: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(
            {"path": paths[index], "boxes": padded_boxes[index],
             "labels": padded_labels[index], "orientation": turns[index]})

    def finish(record: dict, image: tf.Tensor, window: tf.Tensor, source_size) -> dict:
        # Boxes are fractions of the source: to source pixels, then through the window
        # (the whole image, or the "standard" crop) to the example's pixels. After a
        # crop, the batch augmentation's task hook clips boxes and pads those left out.
        if turned:  # no fused crop: the window is the whole displayed image
            swap = record["orientation"] >= 5
            source_size = tf.where(swap, tf.reverse(source_size, [0]), source_size)
            window = tf.concat([[0, 0], source_size], 0)
        source = tf.cast(tf.stack([source_size[1], source_size[0]] * 2), tf.float32)
        boxes = crop_boxes(record["boxes"] * source, window, (height, width))
        valid = record["labels"] >= 0
        boxes = tf.where(valid[:, None], boxes, float(PAD_VALUE))
        return {"images": image,
                "bounding_boxes": {"boxes": boxes, "labels": record["labels"]}}

    # Boxes are fractions of the displayed image: when any image carries an EXIF turn,
    # every image is decoded upright from its own bytes (the spec travels with an
    # exported model, which then turns served photos the same way); otherwise the
    # pixels stay as stored. A fused crop's window is in stored pixels, so turned sets
    # are cropped after decoding.
    spec = Preprocessing((height, width), orientation="exif" if turned else "stored")
    decode = FileDecoder("path", (height, width), finish, preprocessing=spec,
                         crops=not turned)
    train_records = records(train)
    val_examples = records(val).map(decode, num_parallel_calls=tf.data.AUTOTUNE) \
        if len(val) else None
    test_examples = records(test).map(decode, num_parallel_calls=tf.data.AUTOTUNE) \
        if len(test) else None
    return Data(task="detection", class_names=tuple(class_names), image_size=(height, width),
                train_examples=train_records.map(decode, num_parallel_calls=tf.data.AUTOTUNE),
                val_examples=val_examples, train_size=len(train), val_size=len(val),
                batch_size=batch_size, augment=augment, seed=seed, cache=cache,
                train_records=train_records, decode=decode, test_examples=test_examples,
                test_size=len(test))
