"""Confusion matrix heat map with counts and row-normalized shading."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from visionkit.plot._figure import new_figure, save

__all__ = ["confusion_matrix"]

# Beyond this many classes the per-cell numbers become unreadable and are left out.
_MAX_ANNOTATED_CLASSES = 30


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str] | None = None,
                     path: str | os.PathLike | None = None,
                     title: str = "Confusion matrix (rows: true class)") -> str | Figure:
    """Draws a confusion matrix: rows are true classes, columns predicted classes.

    Cells are shaded by the row-normalized rate (recall per true class) and labelled with
    raw counts, so rare classes remain visible.

    Args:
        matrix: `[C, C]` integer counts.
        class_names: names of the C classes. Defaults to "0".."C-1".
        path: PNG file to write. Defaults to None (return the figure).
        title: figure title.

    Returns:
        The path written, or the `Figure` when `path` is None.

    Example:

    >>> figure = confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    >>> figure.axes[0].get_xlabel()
    'predicted'
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"Expected a square [C, C] matrix; received shape {matrix.shape}.")
    count = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(count)]
    if len(names) != count:
        raise ValueError(f"Expected {count} class names for a {count}x{count} matrix; "
                         f"received {len(names)}.")
    rows = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    side = max(4.0, 0.45 * count + 2.0)
    figure = new_figure(side + 1.0, side)
    axis = figure.add_subplot(1, 1, 1)
    image = axis.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis, fraction=0.046, label="rate per true class")
    axis.set_xticks(range(count), names, rotation=45 if count > 8 else 0, ha="right"
                    if count > 8 else "center")
    axis.set_yticks(range(count), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    if count <= _MAX_ANNOTATED_CLASSES:
        for row in range(count):
            for column in range(count):
                axis.text(column, row, str(int(matrix[row, column])), ha="center",
                          va="center", fontsize=8,
                          color="white" if rates[row, column] > 0.5 else "black")
    return save(figure, path)
