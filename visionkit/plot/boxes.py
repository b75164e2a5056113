"""Boxes drawn over images: ground truth against predictions, and served detections.

Example:

>>> import numpy as np
>>> image = np.zeros((32, 32, 3), np.uint8)
>>> figure = draw_detections(image, np.array([[4., 4., 20., 20.]]), np.array([0]),
...                          ["circle"], scores=np.array([0.9]))
>>> type(figure).__name__
'Figure'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from visionkit.plot._figure import new_figure, save

__all__ = ["draw_detections", "ground_truth_vs_predictions"]

_TRUTH_COLOUR = "#2ca02c"
_CLASS_COLOURS = ("#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                  "#17becf", "#bcbd22")


def _name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def _draw(axes, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
          class_names: Sequence[str], scores: np.ndarray | None, colour: str | None,
          score_threshold: float) -> None:
    from matplotlib.patches import Rectangle

    axes.imshow(np.asarray(image).astype(np.uint8))
    axes.set_axis_off()
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    for index, (box, class_id) in enumerate(zip(boxes, classes)):
        if class_id < 0:
            continue
        score = None if scores is None else float(np.asarray(scores).reshape(-1)[index])
        if score is not None and score < score_threshold:
            continue
        edge = colour or _CLASS_COLOURS[int(class_id) % len(_CLASS_COLOURS)]
        axes.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                 fill=False, edgecolor=edge, linewidth=1.5))
        text = _name(class_names, int(class_id)) + ("" if score is None else f" {score:.2f}")
        axes.text(box[0], box[1], text, color="white", fontsize=7, va="bottom",
                  bbox={"facecolor": edge, "alpha": 0.7, "pad": 1, "linewidth": 0})


def draw_detections(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                    class_names: Sequence[str], scores: np.ndarray | None = None,
                    path: str | os.PathLike | None = None,
                    score_threshold: float = 0.0) -> Any:
    """Draws boxes with class names (and scores) over one image.

    Args:
        image: uint8 `[H, W, 3]`.
        boxes: `[k, 4]` xyxy pixels of `image`.
        classes: `[k]` class ids (-1 rows are skipped).
        class_names: names per class id.
        scores: `[k]` scores, or None for ground truth. Defaults to None.
        path: PNG to write, or None to return the figure. Defaults to None.
        score_threshold: boxes scoring below it are not drawn. Defaults to 0.

    Returns:
        The path written, or the figure.
    """
    height, width = np.asarray(image).shape[:2]
    scale = 6.0 / max(height, width)
    figure = new_figure(max(width * scale, 2.0), max(height * scale, 2.0))
    _draw(figure.add_subplot(1, 1, 1), image, boxes, classes, class_names, scores, None,
          score_threshold)
    return save(figure, path)


def ground_truth_vs_predictions(images: np.ndarray, ground_truth: Sequence[dict],
                                predictions: Sequence[dict], class_names: Sequence[str],
                                path: str | os.PathLike | None = None,
                                score_threshold: float = 0.3) -> Any:
    """A grid: each image's ground truth (green) beside its predictions (per class).

    Args:
        images: uint8 `[n, H, W, 3]`.
        ground_truth: per image, `boxes` and `labels`.
        predictions: per image, `boxes`, `scores` and `classes`.
        class_names: names per class id.
        path: PNG to write, or None to return the figure.
        score_threshold: predictions scoring below it are not drawn. Defaults to 0.3.

    Returns:
        The path written, or the figure.
    """
    count = len(images)
    figure = new_figure(5.0, 2.5 * max(count, 1))
    figure.set_layout_engine("none")  # labels near the border must not collapse the axes
    for row in range(count):
        truth, guess = ground_truth[row], predictions[row]
        left = figure.add_subplot(count, 2, 2 * row + 1)
        _draw(left, images[row], truth["boxes"], truth["labels"], class_names, None,
              _TRUTH_COLOUR, 0.0)
        right = figure.add_subplot(count, 2, 2 * row + 2)
        _draw(right, images[row], guess["boxes"], guess["classes"], class_names,
              guess["scores"], None, score_threshold)
        if row == 0:
            left.set_title("ground truth", fontsize=9)
            right.set_title("predictions", fontsize=9)
    return save(figure, path)
