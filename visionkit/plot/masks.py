"""Segmentation figures: colour palettes, mask overlays and image / mask grids."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from visionkit.plot._figure import new_figure, save

__all__ = ["mask_palette", "colour_mask", "overlay_mask", "segmentation_grid"]

# Ignored pixels (mask value 255, or anything outside the palette) are drawn in grey.
IGNORE_COLOUR = (128, 128, 128)
# Weight of the mask colour in an overlay (the image keeps the rest).
OVERLAY_ALPHA = 0.5


def mask_palette(num_classes: int) -> np.ndarray:
    """A fixed uint8 `[num_classes, 3]` palette: black background, then distinct colours.

    Example:

    >>> mask_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    palette = np.zeros((int(num_classes), 3), np.uint8)
    for class_id in range(int(num_classes)):
        # The usual bit-interleaved palette of segmentation benchmarks.
        value, red, green, blue = class_id, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[class_id] = (red, green, blue)
    return palette


def colour_mask(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Colours a `[H, W]` class-id mask: uint8 `[H, W, 3]`; ignored pixels grey."""
    mask = np.asarray(mask)
    palette = mask_palette(num_classes)
    valid = (mask >= 0) & (mask < num_classes)
    coloured = np.empty((*mask.shape, 3), np.uint8)
    coloured[...] = IGNORE_COLOUR
    coloured[valid] = palette[mask[valid].astype(np.int64)]
    return coloured


def overlay_mask(image: np.ndarray, mask: np.ndarray, num_classes: int,
                 alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blends the coloured mask over the image (class 0, background, left uncoloured).

    Args:
        image: `[H, W, 3]` pixels 0..255.
        mask: `[H, W]` class ids.
        num_classes: number of classes.
        alpha: weight of the mask colour. Defaults to 0.5.

    Returns:
        uint8 `[H, W, 3]`.
    """
    image = np.clip(np.asarray(image, np.float32), 0, 255)
    coloured = colour_mask(mask, num_classes).astype(np.float32)
    weight = np.where((np.asarray(mask) > 0)[..., None], float(alpha), 0.0)
    return np.round(image * (1 - weight) + coloured * weight).astype(np.uint8)


def segmentation_grid(images: np.ndarray, true_masks: np.ndarray, predicted_masks: np.ndarray,
                      class_names: Sequence[str], path: str | os.PathLike | None = None
                      ) -> str | Figure:
    """A grid with one row per image: image, true mask, predicted mask, overlay.

    Args:
        images: `[N, H, W, 3]` pixels 0..255.
        true_masks: `[N, H, W]` class ids (255 ignored, drawn grey).
        predicted_masks: `[N, H, W]` class ids.
        class_names: names of the classes (the legend).
        path: PNG file to write. Defaults to None (return the figure).

    Returns:
        The path written, or the figure.
    """
    count = len(images)
    num_classes = len(class_names)
    figure = new_figure(8, 2 * max(count, 1) + 0.5)
    axes = figure.subplots(max(count, 1), 4, squeeze=False)
    titles = ("image", "true mask", "predicted mask", "overlay")
    for row in range(count):
        panels = (np.clip(images[row], 0, 255).astype(np.uint8),
                  colour_mask(true_masks[row], num_classes),
                  colour_mask(predicted_masks[row], num_classes),
                  overlay_mask(images[row], predicted_masks[row], num_classes))
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[column], fontsize=9)
    palette = mask_palette(num_classes) / 255.0
    from matplotlib.patches import Patch

    handles = [Patch(color=palette[i], label=str(name)) for i, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(num_classes, 6),
                  fontsize=8)
    return save(figure, path)
