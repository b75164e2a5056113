"""Where a detector's anchors sit: the pixel centres its outputs are laid out on."""

from __future__ import annotations

import keras
import numpy as np

from visionkit.models.detection.detectors import is_retinanet

__all__ = ["anchor_centres"]

# Strides of the detectors' anchor levels: YOLOv8 predicts on P3..P5, RetinaNet on P3..P7.
_YOLO_V8_STRIDES = (8, 16, 32)
_RETINANET_STRIDES = (8, 16, 32, 64, 128)


def anchor_centres(model: keras.Model) -> np.ndarray:
    """(x, y) pixel centres `[A, 2]` of a detector's anchors, in its outputs' order.

    Both keras-cv heads lay anchors out level by level (finest first), row by row, with
    centres at `(index + 0.5) * stride`; RetinaNet has several anchors per position
    (consecutive), YOLOv8 one.

    Args:
        model: a detector (`visionkit.models.detection.is_detector`).

    Returns:
        float32 NumPy `[A, 2]`.
    """
    height, width = (int(v) for v in model.input_shape[1:3])
    strides = _RETINANET_STRIDES if is_retinanet(model) else _YOLO_V8_STRIDES
    levels = [(np.arange(-(-height // s)) + 0.5) * s for s in strides]
    columns = [(np.arange(-(-width // s)) + 0.5) * s for s in strides]
    positions = sum(len(r) * len(c) for r, c in zip(levels, columns))
    if is_retinanet(model):
        # The static output shape of keras-cv's RetinaNet can be wrong; its anchors are not.
        generated = model.anchor_generator(image_shape=tuple(model.input_shape[1:]))
        anchors = sum(int(level.shape[0]) for level in generated.values())
    else:
        anchors = int(model.outputs[-1].shape[1])
    per_position = anchors // positions
    if per_position * positions != anchors:
        raise ValueError(f"Model {model.name!r} has {anchors} anchors, not a multiple of its "
                         f"{positions} positions on strides {strides}.")
    centres = [np.repeat(np.stack(np.meshgrid(c, r), -1).reshape(-1, 2), per_position, axis=0)
               for r, c in zip(levels, columns)]
    return np.concatenate(centres).astype(np.float32)
