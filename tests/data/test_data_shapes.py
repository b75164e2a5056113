"""The shapes generator and `vk.data.shapes`: determinism, exact annotations, balance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import visionkit as vk
from visionkit.data.synthetic import SHAPE_NAMES, generate_shapes


def scene_arrays(scenes):
    return (scenes.images, scenes.instance_ids, scenes.instance_classes, scenes.instance_boxes)


def test_same_seed_identical_different_seed_differs():
    first = scene_arrays(generate_shapes(24, image_size=(40, 56), seed=3, shapes_per_image=(1, 3)))
    again = scene_arrays(generate_shapes(24, image_size=(40, 56), seed=3, shapes_per_image=(1, 3)))
    other = scene_arrays(generate_shapes(24, image_size=(40, 56), seed=4, shapes_per_image=(1, 3)))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])


def test_data_sets_from_the_same_seed_are_identical():
    def val_arrays(seed):
        data = vk.data.shapes(n=60, image_size=(32, 32), seed=seed, batch_size=64)
        images, labels = next(iter(data.val))
        return images.numpy(), labels.numpy()

    (x1, y1), (x2, y2), (x3, _) = val_arrays(7), val_arrays(7), val_arrays(8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_mask_pixels_have_the_shape_colour_and_nothing_else_does():
    scenes = generate_shapes(40, image_size=(48, 64), seed=0, noise=0.0, shapes_per_image=(1, 3))
    for index in range(len(scenes.images)):
        image = scenes.images[index]
        for instance, mask in zip(scenes.instances_of(index), scenes.masks_of(index)):
            colour = scenes.instance_colours[instance]
            assert mask.sum() > 0
            np.testing.assert_array_equal(image[mask], np.broadcast_to(colour, (mask.sum(), 3)))
            # The background and other shapes never have exactly this colour.
            same = np.all(image == colour, axis=-1)
            assert same.sum() == mask.sum()


def test_noise_is_centred_on_the_colour():
    scenes = generate_shapes(10, image_size=(64, 64), seed=1, noise=8.0)
    for index in range(10):
        mask = scenes.masks_of(index)[0]
        colour = scenes.instance_colours[scenes.instances_of(index)[0]].astype(float)
        pixels = scenes.images[index][mask].astype(float)
        # Clipping at 0 / 255 biases channels near the ends, so compare loosely.
        assert np.abs(pixels.mean(axis=0) - colour).max() < 4.0
        assert 4.0 < pixels.std(axis=0).max() < 10.0


def test_boxes_enclose_the_masks_exactly():
    scenes = generate_shapes(30, image_size=(40, 72), seed=2, shapes_per_image=(1, 4))
    assert scenes.num_instances > 30
    for index in range(len(scenes.images)):
        for box, mask in zip(scenes.boxes_of(index), scenes.masks_of(index)):
            x1, y1, x2, y2 = box.astype(int)
            np.testing.assert_array_equal(box, [x1, y1, x2, y2])  # whole pixel edges
            inside = np.zeros_like(mask)
            inside[y1:y2, x1:x2] = True
            assert not np.any(mask & ~inside), "mask pixels outside the box"
            # Every edge of the box touches the mask.
            assert mask[y1, x1:x2].any() and mask[y2 - 1, x1:x2].any()
            assert mask[y1:y2, x1].any() and mask[y1:y2, x2 - 1].any()
            # Shapes lie fully inside the image.
            assert x1 >= 0 and y1 >= 0 and x2 <= mask.shape[1] and y2 <= mask.shape[0]


def _geometry_class(mask: np.ndarray) -> str:
    """An independent shape recogniser: solidity, then polygon vertex count."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(contour)
    solidity = area / cv2.contourArea(cv2.convexHull(contour))
    if solidity < 0.64:
        return "star"
    if solidity < 0.85:
        return "cross"
    vertices = len(cv2.approxPolyDP(contour, 0.04 * cv2.arcLength(contour, True), True))
    return {3: "triangle", 4: "square"}.get(vertices, "circle")


def test_labels_match_the_drawn_geometry():
    scenes = generate_shapes(150, image_size=(96, 96), seed=0, noise=0.0)
    recognised = np.array([_geometry_class(scenes.masks_of(i)[0]) for i in range(150)])
    names = np.array([scenes.class_names[c] for c in scenes.instance_classes])
    assert np.mean(recognised == names) >= 0.95, list(zip(names, recognised))


def test_class_maps_and_subset_of_classes():
    scenes = generate_shapes(6, image_size=(32, 32), seed=0, classes=["star", "circle"])
    assert scenes.class_names == ("star", "circle")
    maps = scenes.class_maps(background=255)
    for index in range(6):
        mask = scenes.masks_of(index)[0]
        assert np.all(maps[index][mask] == scenes.classes_of(index)[0])
        assert np.all(maps[index][~mask] == 255)


def test_classification_labels_are_balanced():
    data = vk.data.shapes(n=203, image_size=(32, 32), seed=0, batch_size=256)
    assert data.class_names == SHAPE_NAMES
    labels = np.concatenate([next(iter(data.train))[1].numpy(), next(iter(data.val))[1].numpy()])
    counts = np.bincount(labels, minlength=5)
    assert counts.sum() == 203 and counts.max() - counts.min() <= 1
    images = next(iter(data.val))[0].numpy()
    assert images.dtype == np.float32 and images.shape[1:] == (32, 32, 3)
    assert images.min() >= 0 and images.max() <= 255


def test_task_and_class_errors():
    with pytest.raises(ValueError, match="Did you mean 'detection'"):
        vk.data.shapes("detections")
    with pytest.raises(ValueError, match="Did you mean 'classification'"):
        vk.data.shapes("clasification")
    with pytest.raises(ValueError, match="Did you mean 'circle'"):
        vk.data.shapes(classes=["circel", "star"])
    with pytest.raises(ValueError, match="at least 2"):
        vk.data.shapes(classes=["star"])
    with pytest.raises(ValueError, match="image_size"):
        vk.data.shapes(image_size=(8, 8))
    with pytest.raises(ValueError, match="noise"):
        generate_shapes(2, noise=-1.0)


@pytest.mark.parametrize("given, expected", [(None, 4), (8, 8), (np.int64(2), 2)])
def test_segmentation_batches_by_the_task_unless_given_its_own(given, expected):
    data = vk.data.shapes("segmentation", n=16, image_size=(16, 16), batch_size=given)
    assert data.batch_size == expected and type(data.batch_size) is int
    images, masks = next(iter(data.train))
    assert images.shape[0] == masks.shape[0] == expected


@pytest.mark.parametrize("batch_size", [0, 2.5, "4", True])
def test_a_batch_size_that_is_not_a_whole_number_is_named(batch_size):
    # 2.5 and "4" failed inside tf.data without naming batch_size; True batched 1 image.
    with pytest.raises(ValueError, match=r"Expected batch_size as a whole number >= 1; "
                                         rf"received batch_size={batch_size!r}\."):
        vk.data.shapes("segmentation", n=16, image_size=(16, 16), batch_size=batch_size)
