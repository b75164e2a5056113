"""The pointing game: does an attribution map's maximum fall on the object?

A hit is an image whose map has its largest value on a pixel of the object's mask, or
within `tolerance` pixels of it (Euclidean distance to the nearest mask pixel). The paper
counts a hit within 15 pixels at 224x224; `tolerance=0` asks for the mask itself. Ties go
to the first maximum in row-major order.

Reference:
    - [Top-down Neural Attention by Excitation Backprop](https://arxiv.org/abs/1608.00507)
      (Zhang et al., ECCV 2016)

Example:

>>> import numpy as np
>>> maps = np.zeros((2, 4, 4)); maps[0, 1, 1] = maps[1, 3, 3] = 1
>>> masks = np.zeros((2, 4, 4), bool); masks[:, :2, :2] = True
>>> pointing_game(maps, masks).tolist()
[True, False]
>>> pointing_game(maps, masks, tolerance=2.9).tolist()
[True, True]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import distance_transform_edt

__all__ = ["pointing_game"]


def pointing_game(maps: Any, masks: Any, tolerance: float = 0.0) -> np.ndarray:
    """Per image, whether the map's maximum lies on the mask (or within `tolerance` px).

    Args:
        maps: `[B, H, W]` attribution maps (any of `grad_cam`, `occlusion`, `saliency`...).
        masks: `[B, H, W]` object masks (bool, or nonzero = object).
        tolerance: largest distance in pixels from the mask still counted as a hit.
            Defaults to 0.

    Returns:
        bool NumPy `[B]`; its mean is the pointing-game accuracy.

    Raises:
        ValueError: when the shapes differ or are not `[B, H, W]`, when a mask is empty,
            or for a negative tolerance.
    """
    maps, masks = np.asarray(maps), np.asarray(masks).astype(bool)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"Expected maps and masks of the same shape [B, H, W]; received "
                         f"maps {maps.shape} and masks {masks.shape}.")
    if tolerance < 0:
        raise ValueError(f"Expected tolerance >= 0 pixels; received tolerance={tolerance}.")
    empty = np.flatnonzero(~masks.reshape(len(masks), -1).any(axis=1))
    if empty.size:
        raise ValueError(f"Expected every mask to contain the object; masks "
                         f"{empty[:10].tolist()} are empty.")
    rows, cols = np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), maps.shape[1:])
    if tolerance == 0:
        return masks[np.arange(len(maps)), rows, cols]
    distance = [distance_transform_edt(~mask)[row, col]
                for mask, row, col in zip(masks, rows, cols)]
    return np.asarray(distance) <= tolerance
