"""A grid of images with optional titles (filters, kernels, activations, top patches)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from visionkit.plot._figure import new_figure, save

__all__ = ["image_grid", "to_display"]


def to_display(image: np.ndarray) -> np.ndarray:
    """An image as matplotlib shows it: uint8 kept, floats in 0..255 scaled to 0..1,
    one channel squeezed to 2D."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype == np.uint8:
        return array
    if array.max(initial=0) > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def image_grid(images: Sequence[np.ndarray] | np.ndarray, titles: Sequence[str] | None = None,
               path: str | os.PathLike | None = None, columns: int | None = None,
               title: str = "", cmap: str = "viridis", tile_inches: float = 1.4) -> str | Figure:
    """Draws images in a grid.

    Args:
        images: `[N, h, w]` or `[N, h, w, C]` arrays (uint8, 0..1 or 0..255 floats);
            2D maps are drawn with `cmap`.
        titles: one title per image. Defaults to None.
        path: PNG file to write. Defaults to None (return the figure).
        columns: images per row. Defaults to about the square root of N.
        title: figure title.
        cmap: colour map of 2D maps. Defaults to "viridis".
        tile_inches: size of one tile. Defaults to 1.4.

    Returns:
        The path written, or the `Figure`.

    Example:

    >>> figure = image_grid(np.zeros((5, 8, 8, 3), "uint8"), titles=list("abcde"))
    >>> len([axis for axis in figure.axes if axis.get_title()])
    5
    """
    count = len(images)
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    figure = new_figure(columns * tile_inches, rows * tile_inches + (0.4 if title else 0))
    for index in range(rows * columns):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.axis("off")
        if index >= count:
            continue
        image = to_display(images[index])
        if image.ndim == 2:
            axis.imshow(image, cmap=cmap)
        else:
            axis.imshow(image)
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=8)
    if title:
        figure.suptitle(title)
    return save(figure, path)
