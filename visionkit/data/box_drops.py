"""Boxes an augmentation drops: counted, and said once with examples.

A geometric augmentation (a preset's warp or crop, Keras layers, an albumentations
Compose) can move a box out of the image, or leave less than `MIN_BOX_SIDE` pixels of it
inside; the box then becomes -1 padding and its object is no longer a target. Each
augmenting pipeline counts those boxes in a `DroppedBoxes` and warns the first time one
is dropped, naming how many of the batch's (or image's) boxes left, their class ids and
the first of them as they were; later drops are added to the count without a new warning
(`dropped_box_totals()` reads the counts of the process: boxes that went into
augmentation, each counted once, and boxes dropped).

Example:

>>> import numpy as np
>>> counter = DroppedBoxes("example")
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     _ = counter.record(np.array([[0, 3, -1]]), np.array([[0, -1, -1]]))
...     _ = counter.record(np.array([[2, -1, -1]]), np.array([[-1, -1, -1]]))
>>> len(caught), counter.dropped, counter.boxes
(1, 2, 3)
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import tensorflow as tf

from visionkit.data.boxes import MIN_BOX_SIDE

__all__ = ["DroppedBoxes", "counter_for", "dropped_box_totals", "track_dropped_boxes"]

_TOTALS = {"boxes": 0, "dropped": 0}
_TOTALS_LOCK = threading.Lock()
# Class ids a warning shows at most.
_EXAMPLES = 10


class DroppedBoxes:
    """Counts the boxes one augmentation drops; warns at the first drop.

    Args:
        source: what augments, as the warning names it (e.g. 'preset "geometric"').
        follow_up: True for a stage that sees boxes an earlier counted stage already
            augmented (the clean-up after an albumentations Compose): its drops add to
            the process totals, its boxes do not (they were counted on the way in).
    """

    def __init__(self, source: str, follow_up: bool = False) -> None:
        self.source = source
        self.follow_up = follow_up
        self.boxes = 0
        self.dropped = 0
        self._warned = False
        self._lock = threading.Lock()

    def record(self, before: np.ndarray, after: np.ndarray,
               before_boxes: np.ndarray | None = None,
               image_size: tuple[int, int] | np.ndarray | None = None) -> np.int64:
        """Counts one batch (or example): class ids `[..., N]` before and after, -1 for
        padding. Rows may be compacted (albumentations) or kept in place (warps): the
        count per image is the difference; the examples are the ids that went missing.
        `before_boxes` (`[..., N, 4]` xyxy pixels, optional): the boxes before
        augmenting; those already narrower or lower than `MIN_BOX_SIDE` would be
        dropped by any augmentation, and the warning says how many of the drops they are
        (with rows kept in place, exactly the dropped ones; a tiny box an augmentation
        enlarged and kept is not one). `image_size` (`(height, width)`, optional): the
        boxes are measured inside the image (a box outside it has nothing left).
        Returns the number dropped."""
        before, after = np.asarray(before), np.asarray(after)
        kept_before = (before >= 0).reshape(-1, before.shape[-1]) if before.size else \
            np.zeros((0, 0), bool)
        kept_after = (after >= 0).reshape(-1, after.shape[-1]) if after.size else \
            np.zeros((0, 0), bool)
        boxes = int(kept_before.sum())
        lost = int(np.maximum(kept_before.sum(-1) - kept_after.sum(-1), 0).sum()) \
            if boxes else 0
        with _TOTALS_LOCK:
            _TOTALS["boxes"] += 0 if self.follow_up else boxes
            _TOTALS["dropped"] += lost
        with self._lock:
            self.boxes += boxes
            self.dropped += lost
            first = lost > 0 and not self._warned
            self._warned = self._warned or first
        if first:
            ids = _missing_ids(before.reshape(-1, before.shape[-1]),
                               after.reshape(-1, after.shape[-1]))
            already = _already_unusable(before, after, before_boxes, image_size, lost)
            cause = (f" {already} of them were already narrower or lower than "
                     f"{MIN_BOX_SIDE} pixel inside the image before augmenting (the data's boxes: any "
                     "augmentation drops them; fix or remove them in the annotations)."
                     if already else "")
            unit = "an image" if before.ndim == 1 else f"a batch of {before.shape[0]} images"
            shown = _dropped_boxes(before, after, before_boxes)
            boxes_text = f" The first of them before augmenting (xyxy pixels): {shown}." \
                if shown else ""
            warnings.warn(
                f"Augmentation ({self.source}) dropped {lost} of the {boxes} boxes of "
                f"{unit}: moved out of the image, or with less than {MIN_BOX_SIDE} pixel "
                f"left inside (class ids {ids[:_EXAMPLES]}); they became -1 padding."
                f"{boxes_text}{cause} Further drops are counted without another warning "
                "(visionkit.data.box_drops.dropped_box_totals()).", stacklevel=2)
        return np.int64(lost)


def counter_for(registry: dict | None, source: str, follow_up: bool = False) -> DroppedBoxes:
    """The counter of `source` in `registry`, made on first use, so that every pipeline
    built from one data set (a second pass through `Data.train`, a fine-tuning phase)
    adds to one count and warns once; a new counter when `registry` is None.

    Example:

    >>> registry = {}
    >>> counter_for(registry, "preset") is counter_for(registry, "preset")
    True
    """
    if registry is None:
        return DroppedBoxes(source, follow_up)
    key = (source, follow_up)
    if key not in registry:
        registry[key] = DroppedBoxes(source, follow_up)
    return registry[key]


def _already_unusable(before: np.ndarray, after: np.ndarray, boxes: np.ndarray | None,
                      image_size: tuple[int, int] | np.ndarray | None, lost: int) -> int:
    """How many of the `lost` boxes had a side under `MIN_BOX_SIDE` inside the image
    before augmenting (0 without boxes). Rows kept in place (`after` has -1 exactly
    where boxes were lost): those rows; compacted rows: at most the tiny ones."""
    if boxes is None:
        return 0
    boxes = np.asarray(boxes, np.float64).reshape(before.shape + (4,))
    if image_size is not None:
        height, width = (float(v) for v in np.asarray(image_size).reshape(-1)[-2:])
        boxes = np.clip(boxes, 0.0, [width, height, width, height])
    small = (before >= 0) & (np.minimum(boxes[..., 2] - boxes[..., 0],
                                        boxes[..., 3] - boxes[..., 1]) < MIN_BOX_SIDE)
    if after.shape == before.shape:
        gone = (before >= 0) & (after < 0)
        if int(gone.sum()) == lost:
            return int(np.sum(small & gone))
    return min(int(small.sum()), lost)


def _dropped_boxes(before: np.ndarray, after: np.ndarray, boxes: np.ndarray | None,
                   limit: int = 3) -> list[list[float]]:
    """The first few dropped boxes as they were before augmenting, when the rows were
    kept in place (`after` -1 exactly where a box was lost); [] otherwise."""
    if boxes is None or after.shape != before.shape:
        return []
    gone = (before >= 0) & (after < 0)
    boxes = np.asarray(boxes, np.float64).reshape(before.shape + (4,))
    return [[round(float(v), 1) for v in box] for box in boxes[gone][:limit]]


def _missing_ids(before: np.ndarray, after: np.ndarray) -> list[int]:
    """Class ids present before and missing after, image by image (with multiplicity)."""
    missing: list[int] = []
    for old, new in zip(before, after):
        remaining = list(new[new >= 0])
        for class_id in old[old >= 0]:
            if class_id in remaining:
                remaining.remove(class_id)
            else:
                missing.append(int(class_id))
    return missing


def track_dropped_boxes(counter: DroppedBoxes, before_labels: tf.Tensor,
                        after_labels: tf.Tensor, before_boxes: tf.Tensor,
                        image_size: tf.Tensor | None = None) -> tf.Tensor:
    """Graph code: `after_labels`, once `counter` has recorded the batch (one
    `tf.numpy_function` call per batch); `before_boxes` are the boxes before augmenting,
    `image_size` the images' `(height, width)` (see `DroppedBoxes.record`)."""
    inputs = [before_labels, after_labels, before_boxes]
    if image_size is not None:
        inputs.append(tf.cast(image_size, tf.int64))
    recorded = tf.numpy_function(counter.record, inputs,
                                 tf.int64, stateful=True, name="count_dropped_boxes")
    with tf.control_dependencies([recorded]):
        return tf.identity(after_labels)


def dropped_box_totals() -> dict[str, int]:
    """`{"boxes": seen, "dropped": dropped}` over every augmentation of this process."""
    with _TOTALS_LOCK:
        return dict(_TOTALS)
