"""The embedded data sets: scikit-learn's bundled handwritten digits."""

from __future__ import annotations

import numpy as np

from visionkit.data.arrays import from_arrays
from visionkit.data.pipeline import Data

__all__ = ["digits"]

# scikit-learn's digits are 8x8 with intensities 0..16.
_DIGITS_MAX_INTENSITY = 16.0


def digits(
    image_size: tuple[int, int] = (32, 32),
    validation_split: float = 0.2,
    batch_size: int = 32,
    augment: object = "none",
    seed: int | None = 0,
) -> Data:
    """The 1,797 handwritten digits bundled with scikit-learn, as 3-channel images.

    The 8x8 images (intensities 0..16) are scaled to 0..255, upscaled bilinearly to
    `image_size` and repeated to three channels. Ten classes, "0" to "9". Nothing is
    downloaded: the data ship inside scikit-learn.

    Args:
        image_size: `(height, width)` of the images. Defaults to (32, 32).
        validation_split: stratified fraction held out. Defaults to 0.2.
        batch_size: examples per batch. Defaults to 32.
        augment: augmentation of the train split. Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.

    Returns:
        A classification `Data` set.

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(32, 32))
    >>> data.num_classes, data.train_size + data.val_size
    (10, 1797)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * (255.0 / _DIGITS_MAX_INTENSITY)).astype(np.float32)
    return from_arrays(
        images,
        bunch.target,
        class_names=[str(name) for name in bunch.target_names],
        image_size=image_size,
        validation_split=validation_split,
        batch_size=batch_size,
        augment=augment,
        seed=seed,
    )
