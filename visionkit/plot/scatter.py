"""A 2D embedding drawn as points coloured by class, with image thumbnails on a sample."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from visionkit.plot._figure import new_figure, save
from visionkit.plot.grid import to_display

__all__ = ["embedding_scatter"]


def embedding_scatter(points: np.ndarray, labels: np.ndarray, images: np.ndarray | None = None,
                      class_names: Sequence[str] | None = None, thumbnails: int = 40,
                      path: str | os.PathLike | None = None, title: str = "",
                      seed: int = 0, misclassified: np.ndarray | None = None) -> str | Figure:
    """Scatter plot of `[N, 2]` points coloured by label, with thumbnails at a sample.

    Args:
        points: `[N, 2]` coordinates.
        labels: `[N]` integer labels (-1: unlabelled).
        images: `[N, H, W, C]` images for thumbnails. Defaults to None (no thumbnails).
        class_names: names for the legend. Defaults to the label numbers.
        thumbnails: how many points get a thumbnail. Defaults to 40.
        path: PNG file to write. Defaults to None (return the figure).
        title: figure title.
        seed: which points get thumbnails. Defaults to 0.
        misclassified: bool `[N]`, points drawn with a black cross on top (the model's
            prediction differs from the label). Defaults to None.

    Returns:
        The path written, or the `Figure`.

    Example:

    >>> figure = embedding_scatter(np.random.rand(20, 2), np.arange(20) % 3,
    ...                            np.zeros((20, 8, 8, 3)), thumbnails=5)
    >>> len(figure.axes[0].artists)
    5
    """
    figure = new_figure(8, 7)
    axis = figure.add_subplot(1, 1, 1)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    colour_map = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for index, label in enumerate(classes):
        chosen = labels == label
        name = class_names[label] if class_names is not None and label >= 0 else str(label)
        axis.scatter(points[chosen, 0], points[chosen, 1], s=8, alpha=0.7, label=name,
                     color=colour_map(index % colour_map.N))
    if images is not None and thumbnails:
        sample = np.random.default_rng(seed).choice(len(points), min(thumbnails, len(points)),
                                                     replace=False)
        zoom = 24.0 / max(images.shape[1], 1)
        for index in sample:
            thumbnail = OffsetImage(to_display(images[index]), zoom=zoom, cmap="gray")
            axis.add_artist(AnnotationBbox(thumbnail, points[index], frameon=True, pad=0.1))
    if misclassified is not None:
        wrong = np.asarray(misclassified, bool)
        axis.scatter(points[wrong, 0], points[wrong, 1], s=40, marker="x", color="black",
                     linewidths=1.2, label=f"misclassified ({int(wrong.sum())})", zorder=3)
    axis.legend(loc="best", fontsize=8, markerscale=2)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title or "t-SNE of the model's features")
    return save(figure, path)
