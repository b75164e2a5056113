"""A seeded generator of synthetic "shapes" scenes, with exact per-instance annotations.

Each scene is a background (a random colour, a gentle linear gradient) with one or more
filled shapes (circle, square, triangle, star, cross) of random colour, size, position and
rotation, plus Gaussian pixel noise over the whole image. Every shape *instance* comes with
its class id, its exact visible pixel mask and its tight xyxy box, so classification,
segmentation and detection data all come from the same scenes.

Drawing is pure NumPy + OpenCV without anti-aliasing, so masks are exact: with
`noise=0` every pixel of an instance's mask has exactly the instance's colour. The
generator uses its own NumPy random streams (one per scene, spawned from `seed`), never
TensorFlow's random state: the same arguments always give identical arrays.

Example:

>>> from visionkit.data.synthetic import generate_shapes
>>> scenes = generate_shapes(4, image_size=(32, 48), seed=0)
>>> scenes.images.shape, scenes.images.dtype.name, scenes.num_instances
((4, 32, 48, 3), 'uint8', 4)
>>> scenes.boxes_of(0).shape   # xyxy pixels of the shapes in scene 0
(1, 4)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

from visionkit.data.preprocessing import check_image_size
from visionkit.vocabulary import did_you_mean

__all__ = ["SHAPE_NAMES", "ShapeScenes", "generate_shapes", "resolve_shape_classes"]

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Shape "radius" (centre to farthest point) as a fraction of the image's shorter side.
DEFAULT_SIZE_RANGE = (0.15, 0.35)
# A shape's colour differs from the background colour by at least this Euclidean
# distance in RGB (0..255 units), so every shape stays visible under the default noise.
MIN_COLOUR_CONTRAST = 90.0
# Peak-to-peak amplitude (0..255 units) of the background's linear gradient.
MAX_GRADIENT = 40.0
# A new shape may not hide more than this fraction of an earlier one.
MAX_HIDDEN_FRACTION = 0.5
# Attempts to place a shape before giving up on it (only when shapes overlap too much).
PLACEMENT_ATTEMPTS = 20
# Inner to outer radius of the five-pointed star; arm half-width to arm length of the cross.
STAR_INNER_RATIO = 0.45
CROSS_ARM_RATIO = 0.3
# OpenCV draws polygons with fixed-point vertices: 2**4 = 1/16 pixel precision.
_SUBPIXEL_BITS = 4


@dataclasses.dataclass(frozen=True)
class ShapeScenes:
    """Generated scenes and their shape instances (flat arrays over all scenes).

    Attributes:
        images: uint8 `[N, H, W, 3]`.
        instance_ids: int32 `[N, H, W]`: for each pixel, the index (into the flat
            instance arrays) of the shape visible there, or -1 for background.
        instance_image: int32 `[M]`: the scene each instance belongs to.
        instance_classes: int32 `[M]`: class id of each instance (index in
            `class_names`).
        instance_boxes: float32 `[M, 4]`: tight `(x1, y1, x2, y2)` box of each
            instance's visible pixels, in pixel-edge coordinates (pixel column `c` spans
            `[c, c + 1)`, so `x2 - x1` is the width in pixels).
        instance_colours: uint8 `[M, 3]`: RGB colour each instance was drawn with.
        class_names: the shape names, index = class id.
    """

    images: np.ndarray
    instance_ids: np.ndarray
    instance_image: np.ndarray
    instance_classes: np.ndarray
    instance_boxes: np.ndarray
    instance_colours: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_instances(self) -> int:
        return len(self.instance_classes)

    def instances_of(self, image_index: int) -> np.ndarray:
        """Flat indices of the instances in scene `image_index`, in drawing order."""
        return np.flatnonzero(self.instance_image == image_index)

    def masks_of(self, image_index: int) -> np.ndarray:
        """Visible masks of scene `image_index`'s instances: bool `[k, H, W]`."""
        ids = self.instances_of(image_index)
        return self.instance_ids[image_index][None] == ids[:, None, None]

    def boxes_of(self, image_index: int) -> np.ndarray:
        """xyxy boxes of scene `image_index`'s instances: float32 `[k, 4]`."""
        return self.instance_boxes[self.instances_of(image_index)]

    def classes_of(self, image_index: int) -> np.ndarray:
        """Class ids of scene `image_index`'s instances: int32 `[k]`."""
        return self.instance_classes[self.instances_of(image_index)]

    def class_maps(self, background: int = -1) -> np.ndarray:
        """Per-pixel class ids, int32 `[N, H, W]`; `background` where no shape is."""
        lookup = np.append(self.instance_classes, np.int32(background)).astype(np.int32)
        return lookup[self.instance_ids]  # index -1 picks the appended background


def resolve_shape_classes(classes: int | Sequence[str] | None) -> tuple[str, ...]:
    """Validates a `classes` argument: None (all), a count, or a list of shape names.

    Raises:
        ValueError: for an unknown name (with the close matches), a repeated name or a
            count outside 1..5.
        TypeError: for anything else.
    """
    if classes is None:
        return SHAPE_NAMES
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if not 1 <= classes <= len(SHAPE_NAMES):
            raise ValueError(f"Expected classes between 1 and {len(SHAPE_NAMES)} (the shapes "
                             f"{SHAPE_NAMES}); received classes={classes}.")
        return SHAPE_NAMES[:int(classes)]
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError("Expected classes as None, a number of classes or a list of shape "
                        f"names from {SHAPE_NAMES}; received {classes!r}.")
    names = tuple(str(name) for name in classes)
    for name in names:
        if name not in SHAPE_NAMES:
            hint = did_you_mean(name, SHAPE_NAMES)
            raise ValueError(f"Unknown shape {name!r} in classes.{hint} Expected names from "
                             f"{SHAPE_NAMES}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Expected each shape at most once in classes; received {names}.")
    if not names:
        raise ValueError("Expected at least one shape name in classes; received an empty list.")
    return names


def generate_shapes(
    n: int,
    image_size: tuple[int, int] = (64, 64),
    seed: int | None = 0,
    classes: int | Sequence[str] | None = None,
    shapes_per_image: tuple[int, int] = (1, 1),
    noise: float = 8.0,
    size_range: tuple[float, float] = DEFAULT_SIZE_RANGE,
) -> ShapeScenes:
    """Draws `n` seeded scenes of filled shapes with exact masks and boxes.

    The classes of all instances together are a shuffled, balanced sequence (each class
    appears `M // num_classes` or one more times). Shapes lie fully inside the image; a
    later shape may hide at most half of an earlier one (if no such place is found after
    20 attempts, the later shape is left out).

    Args:
        n: number of scenes.
        image_size: `(height, width)`. Defaults to (64, 64).
        seed: seed of the scenes; None draws fresh entropy. Defaults to 0.
        classes: shape names to draw (their order gives the class ids), their number
            (the first ones of "circle", "square", "triangle", "star", "cross"), or None
            for all five. Defaults to None.
        shapes_per_image: inclusive `(min, max)` number of shapes per scene. Defaults
            to (1, 1).
        noise: standard deviation of the Gaussian pixel noise in 0..255 units, over the
            whole image. Defaults to 8.0.
        size_range: `(min, max)` shape radius as a fraction of the shorter side.
            Defaults to (0.15, 0.35).

    Returns:
        A `ShapeScenes`: images uint8 `[n, H, W, 3]` and the flat instance arrays.

    Raises:
        ValueError: for a bad count, size, noise level or class list.

    Example:

    >>> scenes = generate_shapes(10, image_size=(32, 32), seed=1, classes=["circle", "star"])
    >>> scenes.class_names, np.bincount(scenes.instance_classes).tolist()
    (('circle', 'star'), [5, 5])
    """
    names = resolve_shape_classes(classes)
    height, width = _check_size(image_size)
    if int(n) < 0:
        raise ValueError(f"Expected n >= 0 scenes; received n={n}.")
    n = int(n)
    low, high = (int(v) for v in shapes_per_image)
    if not 1 <= low <= high:
        raise ValueError("Expected shapes_per_image as (min, max) with 1 <= min <= max; "
                         f"received {tuple(shapes_per_image)}.")
    if not float(noise) >= 0:
        raise ValueError(f"Expected noise >= 0 (a standard deviation); received noise={noise}.")
    size_low, size_high = (float(v) for v in size_range)
    if not 0 < size_low <= size_high < 0.5:
        raise ValueError("Expected size_range (min, max) with 0 < min <= max < 0.5 of the "
                         f"shorter side; received {tuple(size_range)}.")

    sequence = np.random.SeedSequence(seed)
    plan_seed, *scene_seeds = sequence.spawn(n + 1)
    plan = np.random.default_rng(plan_seed)
    counts = plan.integers(low, high + 1, size=n)
    pool = plan.permutation(np.resize(np.arange(len(names), dtype=np.int32), int(counts.sum())))
    starts = np.concatenate([[0], np.cumsum(counts)])

    images = np.empty((n, height, width, 3), np.uint8)
    instance_ids = np.full((n, height, width), -1, np.int32)
    image_of, class_of, boxes, colours = [], [], [], []
    for index in range(n):
        rng = np.random.default_rng(scene_seeds[index])
        wanted = pool[starts[index]:starts[index + 1]]
        image, ids, drawn = _draw_scene(rng, (height, width), wanted, names, float(noise),
                                        (size_low, size_high))
        images[index] = image
        offset = len(class_of)
        instance_ids[index] = np.where(ids >= 0, ids + offset, -1)
        for local, (class_id, colour) in enumerate(drawn):
            image_of.append(index)
            class_of.append(class_id)
            colours.append(colour)
            boxes.append(_tight_box(ids == local))
    return ShapeScenes(
        images=images,
        instance_ids=instance_ids,
        instance_image=np.asarray(image_of, np.int32),
        instance_classes=np.asarray(class_of, np.int32),
        instance_boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        instance_colours=np.asarray(colours, np.uint8).reshape(-1, 3),
        class_names=names,
    )


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    # Below 16 pixels a star, a cross and a circle are no longer told apart.
    return check_image_size(image_size, 16, " for the shapes to stay recognisable")


def _draw_scene(rng: np.random.Generator, size: tuple[int, int], classes: np.ndarray,
                names: tuple[str, ...], noise: float, size_range: tuple[float, float]):
    """One scene: returns (uint8 image, int32 local instance ids, [(class, colour)])."""
    height, width = size
    background = rng.uniform(0, 255, 3)
    direction = rng.uniform(0, 2 * math.pi)
    amplitude = rng.uniform(0, MAX_GRADIENT)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(direction) * cols / width + np.sin(direction) * rows / height)
    ramp = (ramp - ramp.mean()) / max(float(np.ptp(ramp)), 1e-6) * amplitude
    canvas = np.clip(background[None, None, :] + ramp[..., None], 0, 255)

    ids = np.full(size, -1, np.int32)
    drawn: list[tuple[int, tuple[int, int, int]]] = []
    shorter = min(height, width)
    for class_id in classes:
        colour = _contrasting_colour(rng, background)
        for _ in range(PLACEMENT_ATTEMPTS):
            radius = rng.uniform(*size_range) * shorter
            centre_x = rng.uniform(radius + 1, width - radius - 1)
            centre_y = rng.uniform(radius + 1, height - radius - 1)
            angle = rng.uniform(0, 2 * math.pi)
            mask = np.zeros(size, np.uint8)
            _fill_shape(mask, names[class_id], centre_x, centre_y, radius, angle)
            mask = mask.astype(bool)
            if not mask.any() or not _keeps_earlier_visible(ids, mask, len(drawn)):
                continue
            ids[mask] = len(drawn)
            canvas[mask] = colour
            drawn.append((int(class_id), colour))
            break
    if noise > 0:
        canvas = canvas + rng.normal(0.0, noise, canvas.shape)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return image, ids, drawn


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """A random RGB colour at least MIN_COLOUR_CONTRAST away from `background`."""
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - background) >= MIN_COLOUR_CONTRAST:
            return (int(colour[0]), int(colour[1]), int(colour[2]))


def _keeps_earlier_visible(ids: np.ndarray, mask: np.ndarray, count: int) -> bool:
    """Whether drawing `mask` over `ids` leaves every earlier instance mostly visible."""
    for earlier in range(count):
        visible = ids == earlier
        hidden = np.count_nonzero(visible & mask)
        if hidden > MAX_HIDDEN_FRACTION * np.count_nonzero(visible):
            return False
    return True


def _outline(name: str, radius: float, angle: float) -> np.ndarray:
    """Polygon vertices `[k, 2]` (x, y) of a shape centred at the origin."""
    if name == "square":
        turns = angle + math.pi / 4 + np.arange(4) * math.pi / 2
        radii = np.full(4, radius)
    elif name == "triangle":
        turns = angle + np.arange(3) * 2 * math.pi / 3
        radii = np.full(3, radius)
    elif name == "star":
        turns = angle + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * STAR_INNER_RATIO)
    elif name == "cross":
        arm = radius * CROSS_ARM_RATIO
        # A plus sign with arms reaching `radius` along the axes, then rotated.
        corner = math.hypot(radius, arm)
        spread = math.atan2(arm, radius)
        inner = math.hypot(arm, arm)
        turns, radii = [], []
        for quarter in range(4):
            base = angle + quarter * math.pi / 2
            turns += [base - spread, base + spread, base + math.pi / 4]
            radii += [corner, corner, inner]
        turns, radii = np.asarray(turns), np.asarray(radii)
    else:
        raise ValueError(f"No outline for shape {name!r}.")
    return np.stack([radii * np.cos(turns), radii * np.sin(turns)], axis=-1)


def _fill_shape(mask: np.ndarray, name: str, centre_x: float, centre_y: float,
                radius: float, angle: float) -> None:
    """Fills shape `name` into the uint8 `mask` with 1s (no anti-aliasing)."""
    scale = 1 << _SUBPIXEL_BITS
    # OpenCV's fixed-point coordinates address pixel centres; our geometry uses pixel
    # edges (pixel c spans [c, c + 1)), hence the half-pixel shift.
    centre = np.array([centre_x - 0.5, centre_y - 0.5])
    if name == "circle":
        cv2.circle(mask, tuple(int(round(v * scale)) for v in centre), int(round(radius * scale)),
                   1, thickness=-1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        return
    points = np.rint((_outline(name, radius, angle) + centre) * scale).astype(np.int32)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def _tight_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """xyxy box in pixel-edge coordinates around the True pixels of `mask`."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
