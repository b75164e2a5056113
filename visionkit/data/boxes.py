"""Box utilities: format conversion, checking and clipping, fixed-size padding.

Boxes are `(x1, y1, x2, y2)` in pixels with pixel-edge coordinates (DESIGN.md,
principle 2): pixel column `c` spans `[c, c + 1)`, so `x2 - x1` is the width.

Example:

>>> import numpy as np
>>> xywh_to_xyxy(np.array([[10, 20, 5, 4]]))
array([[10., 20., 15., 24.]], dtype=float32)
>>> boxes, labels = pad_boxes([np.array([[1, 2, 3, 4]])], [np.array([2])], max_boxes=2)
>>> labels.tolist()
[[2, -1]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from visionkit.errors import DataError
from visionkit.vocabulary import BOX_PADDING

__all__ = ["BoxReport", "check_boxes", "cxcywh_to_xyxy", "pad_boxes", "xywh_to_xyxy"]

# Padding value of unused box rows and their labels (Keras 3's own convention).
PAD_VALUE = BOX_PADDING
# Boxes narrower or lower than this (pixels) after clipping become padding.
MIN_BOX_SIDE = 1.0


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """`(x, y, width, height)` -> `(x1, y1, x2, y2)`; float32 `[k, 4]`."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """`(centre x, centre y, width, height)` -> `(x1, y1, x2, y2)`; float32 `[k, 4]`."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    half = boxes[:, 2:] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


@dataclasses.dataclass
class BoxReport:
    """Counts of the boxes `check_boxes` changed or left out, over a whole data set."""

    clipped: int = 0
    dropped_outside: int = 0
    examples: list[str] = dataclasses.field(default_factory=list)

    def note(self, kind: str, where: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(where)

    def message(self, source: str) -> str | None:
        """A warning text, or None when nothing changed."""
        if not (self.clipped or self.dropped_outside):
            return None
        return (f"{source}: clipped {self.clipped} box(es) reaching beyond their image and "
                f"dropped {self.dropped_outside} box(es) lying wholly outside it "
                f"(e.g. {'; '.join(self.examples)}).")


def check_boxes(boxes: np.ndarray, image_size: tuple[float, float], where: str,
                report: BoxReport) -> tuple[np.ndarray, np.ndarray]:
    """Validates xyxy pixel boxes of one image; clips them to the image.

    Args:
        boxes: float `[k, 4]` xyxy pixels.
        image_size: `(height, width)` of the image the boxes refer to.
        where: names the image / annotation file in messages.
        report: accumulates the clipped and dropped counts.

    Returns:
        `(boxes, keep)`: the clipped boxes and a bool mask of those kept.

    Raises:
        DataError: for a degenerate box (x2 <= x1 or y2 <= y1) or a non-finite
            coordinate, naming `where`, the box's position and its values.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    height, width = (float(v) for v in image_size)
    keep = np.ones(len(boxes), bool)
    out = boxes.copy()
    for index, box in enumerate(boxes):
        x1, y1, x2, y2 = box
        if not np.all(np.isfinite(box)):
            raise DataError(f"{where}: box {index} has a non-finite coordinate: "
                            f"{box.tolist()}.")
        if x2 <= x1 or y2 <= y1:
            raise DataError(f"{where}: box {index} is degenerate (expected x2 > x1 and "
                            f"y2 > y1 in xyxy pixels); received {box.tolist()}. Pass "
                            "on_bad_annotation='skip' to leave such boxes out (counted).")
        clipped = np.clip(box, 0, [width, height, width, height])
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            keep[index] = False
            report.note("dropped_outside", f"{where} box {index} {box.tolist()}")
            continue
        if not np.array_equal(clipped, box):
            report.note("clipped", f"{where} box {index} {box.tolist()}")
        out[index] = clipped
    return out.astype(np.float32), keep


def pad_boxes(boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
              max_boxes: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacks per-image boxes and labels into fixed-size arrays padded with -1.

    Args:
        boxes: per image, float `[k_i, 4]`.
        labels: per image, int `[k_i]`.
        max_boxes: rows per image; must be at least every `k_i`.

    Returns:
        `(boxes float32 [N, max_boxes, 4], labels int32 [N, max_boxes])`.

    Raises:
        ValueError: if an image has more than `max_boxes` boxes.
    """
    count = len(boxes)
    out_boxes = np.full((count, int(max_boxes), 4), PAD_VALUE, np.float32)
    out_labels = np.full((count, int(max_boxes)), PAD_VALUE, np.int32)
    for index, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        image_boxes = np.asarray(image_boxes, np.float32).reshape(-1, 4)
        if len(image_boxes) > max_boxes:
            raise ValueError(f"Image {index} has {len(image_boxes)} boxes, more than "
                             f"max_boxes={max_boxes}.")
        out_boxes[index, :len(image_boxes)] = image_boxes
        out_labels[index, :len(image_boxes)] = np.asarray(image_labels, np.int32)
    return out_boxes, out_labels


def clip_box_batch(boxes, labels, image_size: tuple[int, int]):
    """Graph code: clips a batch of boxes to the image and re-pads the ones that left it.

    After a geometric augmentation, boxes may reach past the border or leave the image;
    this clips them and turns boxes with no area left (and rows whose label is -1) into
    -1 padding, so targets stay in the batch vocabulary.

    Args:
        boxes: float `[B, N, 4]` xyxy pixels.
        labels: int `[B, N]`, -1 for padding.
        image_size: `(height, width)` of the images.

    Returns:
        `(boxes float32 [B, N, 4], labels int32 [B, N])`.
    """
    import tensorflow as tf

    height, width = (float(v) for v in image_size)
    boxes = tf.cast(boxes, tf.float32)
    labels = tf.cast(labels, tf.int32)
    clipped = tf.clip_by_value(boxes, 0.0, tf.constant([width, height, width, height]))
    valid = ((clipped[..., 2] - clipped[..., 0]) >= MIN_BOX_SIDE) & \
        ((clipped[..., 3] - clipped[..., 1]) >= MIN_BOX_SIDE) & (labels >= 0)
    boxes = tf.where(valid[..., None], clipped, float(PAD_VALUE))
    labels = tf.where(valid, labels, PAD_VALUE)
    return boxes, labels
