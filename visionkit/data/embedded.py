"""The embedded data sets: scikit-learn's bundled handwritten digits and synthetic shapes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from visionkit.data.arrays import from_arrays
from visionkit.data.pipeline import Data
from visionkit.vocabulary import TASKS, did_you_mean, get_task, tasks_with

__all__ = ["digits", "shapes"]

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


def shapes(
    task: str = "classification",
    n: int = 512,
    image_size: tuple[int, int] = (64, 64),
    seed: int | None = 0,
    classes: int | Sequence[str] | None = None,
    validation_split: float = 0.2,
    batch_size: int | None = None,
    augment: object = "none",
    noise: float = 8.0,
    shapes_per_image: tuple[int, int] | None = None,
) -> Data:
    """A seeded synthetic data set of filled shapes on noisy backgrounds.

    Each image shows one shape ("circle", "square", "triangle", "star" or "cross") of
    random colour, size, position and rotation on a background of random colour with a
    gentle gradient, plus Gaussian pixel noise. The label is the shape's class; classes
    are balanced (counts differ by at most one). The images come from
    `visionkit.data.synthetic.generate_shapes`, which also gives each shape's exact mask
    and box; segmentation and detection versions of this set will use them.

    The arrays depend only on the arguments (NumPy random streams from `seed`, never
    TensorFlow's random state): the same seed gives identical images.

    Args:
        task: "classification" (one shape per image, its class as the label) or
            "detection" (several shapes, their xyxy boxes and classes, in pixels) or
            "segmentation" (several shapes, the exact per-pixel class map: class 0
            "background", then the shapes) or "multilabel" (several shapes, the set of
            shape classes drawn as a multi-hot label). Defaults to "classification".
        n: number of images (train + validation). Defaults to 512.
        image_size: `(height, width)`, at least (16, 16). Defaults to (64, 64).
        seed: seed of the images, the split, shuffling and augmentation. Defaults to 0.
        classes: shape names to use (their order gives the class ids), their number (the
            first ones of the list above), or None for all five. Defaults to None.
        validation_split: stratified fraction held out. Defaults to 0.2.
        batch_size: examples per batch, or None for the task's
            (`Task.batch_size`: 4 for "segmentation", else 32).
            Defaults to None.
        augment: augmentation of the train split (see `Data`). Defaults to "none".
        noise: standard deviation of the pixel noise in 0..255 units. Defaults to 8.0.
        shapes_per_image: inclusive `(min, max)` shapes per image for "detection"
            (boxes padded with -1 to `max`), "segmentation" and "multilabel". Defaults to
            (1, 4) for detection and (1, 3) for segmentation and multilabel;
            classification always draws one
            shape.

    Returns:
        A `Data` set of the task; images float32 `[H, W, 3]` in 0..255.

    Raises:
        ValueError: for a task that is not available (naming it), fewer than two
            classes, or bad sizes.

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.shapes(n=100, image_size=(32, 32), seed=0)
    >>> data.class_names
    ('circle', 'square', 'triangle', 'star', 'cross')
    >>> data.train_size + data.val_size
    100
    """
    from visionkit.data.synthetic import resolve_shape_classes

    available = tasks_with("shapes_per_image")
    if not isinstance(task, str) or task not in TASKS:
        hint = did_you_mean(task, available)
        raise ValueError(f"Unknown task {task!r} for shapes.{hint} Expected one of "
                         f"{available}.")
    resolved = get_task(task)
    if resolved.shapes_per_image is None:
        raise ValueError(f"shapes(task={task!r}) is not available: the shapes set has a "
                         f"version for the tasks {available}.")
    names = resolve_shape_classes(classes)
    if batch_size is None:
        batch_size = resolved.batch_size
    return resolved.shapes_data(
        tuple(names), n, image_size=image_size, seed=seed, noise=noise,
        shapes_per_image=None if shapes_per_image is None else tuple(shapes_per_image),
        validation_split=validation_split, batch_size=batch_size, augment=augment)
