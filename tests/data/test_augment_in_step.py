"""Images, masks and boxes move together: a known warp against a NumPy pixel reference.

The transform is a horizontal flip, a quarter turn and an integer shift on a non-square
image, so every output pixel comes from exactly one input pixel (no interpolation): the
reference moves pixels with a plain loop, and a box's reference is the bounding box of
its own pixels after they moved (so boxes are checked against the pixels, not against a
second copy of the box arithmetic).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import tensorflow as tf

from visionkit.data import transforms
from visionkit.data.augment import AugmentationPlan
from visionkit.data.box_drops import dropped_box_totals
from visionkit.vocabulary import IGNORE_INDEX, get_task

HEIGHT, WIDTH = 12, 16
# x_in = 13 - y_out ... : flip, then a quarter turn about the centre, then a shift.
MATRIX = transforms.compose([
    transforms.flip_matrix(tf.constant([True]), WIDTH),
    transforms.rotation_matrix(tf.constant([90.0]), HEIGHT, WIDTH),
    transforms.translation_matrix(tf.constant([3.0]), tf.constant([-2.0]))]).numpy()[0]


@dataclasses.dataclass(frozen=True)
class KnownWarp:
    """A batch transform with a fixed matrix (in place of a preset's random one)."""

    fill_mode: str = "constant"

    def __call__(self, inputs: dict, seed: tf.Tensor) -> dict:
        count = tf.shape(inputs["images"])[0]
        return transforms.warp_batch(inputs, tf.tile(tf.constant(MATRIX[None], tf.float32),
                                                     [count, 1, 1]), fill_mode=self.fill_mode)


def mirrored(index: int, size: int) -> int:
    """An index outside 0..size-1 mirrored about the edge, the edge pixel repeated
    (`d c b a | a b c d | d c b a`: Keras's "reflect", NumPy's "symmetric")."""
    period = 2 * size
    index %= period
    return index if index < size else period - 1 - index


def reference_warp(array: np.ndarray, fill, reflect: bool = False) -> np.ndarray:
    """Output pixel (y, x) takes input pixel MATRIX @ (x, y, 1); outside the image
    `fill`, or with `reflect` the mirrored pixel."""
    out = np.full_like(array, fill)
    for y in range(HEIGHT):
        for x in range(WIDTH):
            x_in, y_in, _ = MATRIX @ np.array([x, y, 1.0])
            x_in, y_in = int(round(x_in)), int(round(y_in))
            assert abs(MATRIX @ np.array([x, y, 1.0]) - [x_in, y_in, 1]).max() < 1e-4
            if reflect:
                x_in, y_in = mirrored(x_in, WIDTH), mirrored(y_in, HEIGHT)
            if 0 <= y_in < HEIGHT and 0 <= x_in < WIDTH:
                out[y, x] = array[y_in, x_in]
    return out


def reference_box(box) -> list[float] | None:
    """The xyxy box of the box's pixels after the warp (None when none is left)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    inside = np.zeros((HEIGHT, WIDTH), np.uint8)
    inside[y1:y2, x1:x2] = 1
    rows, columns = np.nonzero(reference_warp(inside, 0))
    if rows.size == 0:
        return None
    return [columns.min(), rows.min(), columns.max() + 1.0, rows.max() + 1.0]


def augmenter(task: str, fill_mode: str = "constant"):
    plan = AugmentationPlan(batch=KnownWarp(fill_mode), seeded=True)
    return plan.batch_function(get_task(task), include_crop=False)


def run_plan(task: str, batch: dict) -> dict:
    return augmenter(task)(batch, tf.constant([0, 0]))


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.float32)
    mask = rng.integers(0, 4, (HEIGHT, WIDTH)).astype(np.int32)
    # Inside, half out after the warp, and one that leaves the image entirely.
    boxes = np.array([[2, 1, 6, 5], [9, 3, 15, 11], [6, 9, 12, 12], [0, 2, 4, 9]],
                     np.float32)
    labels = np.array([1, 2, 3, 0], np.int32)
    return image, mask, boxes, labels


def test_images_and_masks_move_with_the_same_pixels(scene):
    image, mask, _, _ = scene
    out = run_plan("segmentation", {"images": tf.constant(image[None]),
                                    "segmentation_masks": tf.constant(mask[None])})
    # Bilinear sampling at (float32) integer coordinates: equal up to rounding.
    np.testing.assert_allclose(out["images"].numpy()[0], reference_warp(image, 0.0), atol=2e-3)
    # Nearest neighbour: ids stay ids; pixels from outside the image are ignored (255).
    expected = reference_warp(mask, IGNORE_INDEX)
    np.testing.assert_array_equal(out["segmentation_masks"].numpy()[0], expected)
    assert (expected == IGNORE_INDEX).any() and (expected != IGNORE_INDEX).any()


def test_reflected_borders_mirror_the_masks_with_the_images(scene):
    # The presets' border for classification and segmentation: what the warp brings in
    # from outside is the image mirrored, and its mask mirrored the same way, so every
    # pixel keeps the label of what it shows and none is ignored.
    image, mask, _, _ = scene
    out = augmenter("segmentation", "reflect")(
        {"images": tf.constant(image[None]), "segmentation_masks": tf.constant(mask[None])},
        tf.constant([0, 0]))
    constant = reference_warp(mask, IGNORE_INDEX)
    expected = reference_warp(mask, IGNORE_INDEX, reflect=True)
    assert (constant == IGNORE_INDEX).any()  # the warp does bring pixels in from outside
    np.testing.assert_array_equal(out["segmentation_masks"].numpy()[0], expected)
    assert not (expected == IGNORE_INDEX).any()
    np.testing.assert_allclose(out["images"].numpy()[0],
                               reference_warp(image, 0.0, reflect=True), atol=2e-3)


def test_boxes_follow_their_pixels_and_a_dropped_box_is_counted_and_said_once(scene):
    image, _, boxes, labels = scene
    batch = {"images": tf.constant(np.stack([image, image])),
             "bounding_boxes": {"boxes": tf.constant(np.stack([boxes, boxes])),
                                "labels": tf.constant(np.stack([labels, labels]))}}
    expected = [reference_box(box) for box in boxes]
    assert expected.count(None) == 1  # the hand-made case drops exactly one box
    totals = dropped_box_totals()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        augment = augmenter("detection")
        out = augment(batch, tf.constant([0, 0]))
        augment(batch, tf.constant([1, 1]))  # drops again: counted, not said again
        moved = out["bounding_boxes"]["boxes"].numpy()
        classes = out["bounding_boxes"]["labels"].numpy()
    np.testing.assert_allclose(out["images"].numpy()[0], reference_warp(image, 0.0), atol=2e-3)
    for row, box in enumerate(expected):
        if box is None:
            assert classes[0, row] == -1 and (moved[0, row] == -1).all()
        else:
            assert classes[0, row] == labels[row]
            np.testing.assert_allclose(moved[0, row], box, atol=1e-4)
    np.testing.assert_array_equal(moved[0], moved[1])
    said = [w for w in caught if "dropped" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    dropped_label = labels[expected.index(None)]
    assert "dropped 2 of the 8 boxes" in str(said[0].message)
    assert f"class ids [{dropped_label}, {dropped_label}]" in str(said[0].message)
    after = dropped_box_totals()
    assert (after["boxes"] - totals["boxes"], after["dropped"] - totals["dropped"]) == (16, 4)
