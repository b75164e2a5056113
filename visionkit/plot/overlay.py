"""Heat maps (occlusion, Grad-CAM, saliency) laid over the images they explain."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from visionkit.plot._figure import new_figure, save
from visionkit.plot.grid import to_display

__all__ = ["heatmap_overlays"]


def heatmap_overlays(images: np.ndarray, maps: dict[str, np.ndarray],
                     titles: Sequence[str] | None = None, path: str | os.PathLike | None = None,
                     alpha: float = 0.5, cmap: str = "jet") -> str | Figure:
    """One row per image: the image, then each method's map laid over it.

    Args:
        images: `[N, H, W, C]` raw pixels.
        maps: method name -> `[N, H, W]` maps (each drawn scaled to its own range).
        titles: a title per image (e.g. "true 3 / predicted 3"). Defaults to None.
        path: PNG file to write. Defaults to None (return the figure).
        alpha: opacity of the heat map. Defaults to 0.5.
        cmap: colour map. Defaults to "jet".

    Returns:
        The path written, or the `Figure`.

    Example:

    >>> figure = heatmap_overlays(np.zeros((2, 8, 8, 3)), {"occlusion": np.ones((2, 8, 8))})
    >>> len(figure.axes)
    4
    """
    count, columns = len(images), 1 + len(maps)
    figure = new_figure(1.8 * columns, 1.8 * count)
    for row in range(count):
        axis = figure.add_subplot(count, columns, row * columns + 1)
        axis.imshow(to_display(images[row]), cmap="gray")
        axis.axis("off")
        axis.set_title(titles[row] if titles is not None else "image", fontsize=8)
        for column, (name, values) in enumerate(maps.items(), start=2):
            axis = figure.add_subplot(count, columns, row * columns + column)
            axis.imshow(to_display(images[row]), cmap="gray")
            axis.imshow(np.asarray(values[row]), cmap=cmap, alpha=alpha)
            axis.axis("off")
            axis.set_title(name, fontsize=8)
    return save(figure, path)
