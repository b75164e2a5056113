"""The albumentations bridge: an A.Compose applied per image inside the tf.data pipeline."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.config import RecipeError, load_recipe, parse_recipe
from visionkit.data.albumentations_bridge import albumentations_augmenter, compose_from_entries
from visionkit.data.pipeline import Data
from visionkit.run import data_from_recipe

BOXES = A.BboxParams(format="pascal_voc", label_fields=["labels"])


def _numbered_images(count=12, size=(10, 14), seed=0):
    """Non-square noisy uint8 images; the label of image i is i, so outputs can be traced."""
    return np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)


def _classification_data(images, augment, seed=0, batch_size=4, deterministic=None):
    examples = tf.data.Dataset.from_tensor_slices(
        {"images": images.astype(np.float32), "labels": np.arange(len(images), dtype=np.int32)})
    return Data(task="classification", class_names=[str(i) for i in range(len(images))],
                image_size=images.shape[1:3], train_examples=examples, val_examples=None,
                train_size=len(images), val_size=0, batch_size=batch_size, augment=augment,
                seed=seed, deterministic=deterministic)


def _flip_states(batches, images) -> dict[int, bool]:
    """Per label: True if the image came out mirrored, False if unchanged (else fail)."""
    states = {}
    for batch_images, labels in batches:
        for image, label in zip(np.asarray(batch_images), np.asarray(labels)):
            original = images[label].astype(np.float32)
            if np.array_equal(image, original[:, ::-1]):
                states[int(label)] = True
            else:
                np.testing.assert_array_equal(image, original)
                states[int(label)] = False
    return states


def test_classification_images_match_numpy_flip_and_come_back_float32():
    images = _numbered_images()
    data = _classification_data(images, A.Compose([A.HorizontalFlip(p=1.0)]))
    seen = []
    for batch_images, labels in data.train:
        assert batch_images.dtype == tf.float32
        for image, label in zip(batch_images.numpy(), labels.numpy()):
            np.testing.assert_array_equal(image, images[label][:, ::-1].astype(np.float32))
            seen.append(int(label))
    assert sorted(seen) == list(range(len(images)))
    assert data.train.element_spec[0].shape.as_list() == [None, 10, 14, 3]


def test_seeded_augmentation_repeats_in_parallel_and_changes_between_epochs():
    images = _numbered_images(count=16)
    compose = A.Compose([A.HorizontalFlip(p=0.5)])
    first = _classification_data(images, compose, seed=3)
    epochs = list(first.train.repeat(2))
    epoch_one, epoch_two = _flip_states(epochs[:4], images), _flip_states(epochs[4:], images)
    assert 0 < sum(epoch_one.values()) < len(images)  # p=0.5 flips some, not all
    assert epoch_one != epoch_two  # new random numbers every epoch
    # Another Data with the same seed, even one that lets parallel stages hand over
    # elements out of order, flips exactly the same images.
    again = _classification_data(images, compose, seed=3)
    assert _flip_states(list(again.train), images) == epoch_one
    unordered = _classification_data(images, compose, seed=3, deterministic=False)
    assert _flip_states(list(unordered.train), images) == epoch_one
    other = _classification_data(images, compose, seed=4)
    assert _flip_states(list(other.train), images) != epoch_one


def test_albumentations_seeded_compose_fires_transforms_together_and_the_bridge_does_not():
    # albumentations 2.0 seeds every transform of a seeded Compose alike; the bridge
    # draws all transforms of an image from one generator, so flips are independent.
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    compose = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)], seed=0,
                        save_applied_params=True)
    applied = [len(compose(image=image)["applied_transforms"]) for _ in range(40)]
    assert set(applied) == {0, 2}  # never one flip alone
    augment = albumentations_augmenter(A.Compose([A.HorizontalFlip(p=0.5),
                                                  A.VerticalFlip(p=0.5)]), "classification")
    example = {"images": tf.constant(image, tf.float32), "labels": tf.constant(0)}
    outcomes = set()
    for seed in range(40):
        out = augment(example, tf.constant([seed, 0], tf.int64))["images"].numpy()
        outcomes.add((bool(np.array_equal(out, image[:, ::-1])),
                      bool(np.array_equal(out, image[::-1]))))
    assert (True, False) in outcomes and (False, True) in outcomes


def _palette_scene(seed: int, size=(40, 52)):
    """A mask of rectangles (classes 0-3, plus a 255 patch) and an image painting each class."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(size, np.int32)
    for class_id in (1, 2, 3):
        y, x = rng.integers(0, size[0] - 14), rng.integers(0, size[1] - 14)
        mask[y:y + int(rng.integers(8, 14)), x:x + int(rng.integers(8, 14))] = class_id
    mask[:4, :4] = 255
    return mask


PALETTE = {0: (40, 40, 200), 1: (220, 40, 40), 2: (40, 220, 40), 3: (230, 230, 40),
           255: (200, 40, 220)}


def test_segmentation_masks_stay_exact_and_aligned_with_their_images():
    masks = np.stack([_palette_scene(seed) for seed in range(8)])
    colours = np.array([PALETTE[v] for v in sorted(PALETTE)], np.float32)
    lookup = np.zeros(256, np.int64)
    for index, value in enumerate(sorted(PALETTE)):
        lookup[value] = index
    images = colours[lookup[masks]]
    compose = A.Compose([A.Affine(rotate=(-30, 30), scale=(0.8, 1.2), translate_percent=0.1,
                                  fill=0, fill_mask=255, p=1.0),
                         A.HorizontalFlip(p=0.5)])
    data = vk.data.from_arrays(images, masks=masks, class_names=["a", "b", "c", "d"],
                               validation_split=0.0, batch_size=8, augment=compose, seed=0)
    out_images, out_masks = next(iter(data.train))
    assert out_masks.dtype == tf.int32
    assert out_masks.shape.as_list() == [8, 40, 52]
    out_images, out_masks = out_images.numpy(), out_masks.numpy()
    assert set(np.unique(out_masks)) <= {0, 1, 2, 3, 255}  # nearest: no new ids
    assert not np.array_equal(out_masks, masks)  # the masks did move
    # Each labelled pixel shows its class's colour (bilinear edges aside).
    labelled = out_masks != 255
    distances = np.linalg.norm(out_images[..., None, :] - colours, axis=-1)
    nearest = np.asarray(sorted(PALETTE))[distances.argmin(axis=-1)]
    agreement = np.mean(nearest[labelled] == out_masks[labelled])
    assert agreement > 0.95, agreement


def _box_scene(size=48):
    """Four disjoint boxes (integer pixel edges) and a mask drawing object k as k + 1."""
    boxes = np.array([[3, 4, 15, 12], [30, 2, 44, 10], [6, 28, 14, 45], [27, 30, 41, 40]],
                     np.float32)
    mask = np.zeros((size, size), np.int32)
    for index, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        mask[y1:y2, x1:x2] = index + 1
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3)).astype(np.float32)
    # Padded to 6 rows, as detection sources pad to max_boxes.
    padded = np.full((6, 4), -1, np.float32)
    padded[:4] = boxes
    labels = np.array([0, 1, 2, 3, -1, -1], np.int32)
    return {"images": tf.constant(image), "segmentation_masks": tf.constant(mask),
            "bounding_boxes": {"boxes": tf.constant(padded), "labels": tf.constant(labels)}}


def _regions(mask: np.ndarray) -> dict[int, list[int]]:
    """Per object id - 1: the bounding box (xyxy pixel edges) of its mask pixels."""
    regions = {}
    for value in np.unique(mask):
        if value == 0:
            continue
        ys, xs = np.nonzero(mask == value)
        regions[int(value) - 1] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return regions


def test_boxes_follow_a_mask_drawn_from_them_through_geometric_transforms():
    compose = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=1.0),
                         A.Affine(translate_px=(-12, 12), p=1.0)], bbox_params=BOXES)
    augment = albumentations_augmenter(compose, "detection")
    example = _box_scene()
    moved_once = False
    for seed in range(10):
        out = augment(example, tf.constant([seed, 1], tf.int64))
        boxes = out["bounding_boxes"]["boxes"].numpy()
        labels = out["bounding_boxes"]["labels"].numpy()
        assert boxes.shape == (6, 4) and labels.shape == (6,)
        regions = _regions(out["segmentation_masks"].numpy())
        kept = labels >= 0
        # Real rows first, then -1 padding.
        assert np.all(kept[:kept.sum()]) and np.all(boxes[~kept] == -1)
        # The boxes kept are the objects still (at least 1x1 pixel) in the image.
        big_enough = {k for k, (x1, y1, x2, y2) in regions.items() if x2 - x1 >= 1 and y2 - y1 >= 1}
        assert set(labels[kept].tolist()) == big_enough
        for box, label in zip(boxes[kept], labels[kept]):
            np.testing.assert_allclose(box, regions[int(label)], atol=1.5)
        moved_once |= not np.allclose(boxes[:4], example["bounding_boxes"]["boxes"].numpy()[:4])
    assert moved_once


def test_boxes_dropped_by_a_crop_take_their_classes_and_leave_padding():
    # The left half keeps objects 0 and 2 (x < 24); objects 1 and 3 lie right of it.
    compose = A.Compose([A.Crop(x_min=0, y_min=0, x_max=24, y_max=48), A.Resize(48, 48)],
                        bbox_params=BOXES)
    out = albumentations_augmenter(compose, "detection")(_box_scene(), tf.constant(0, tf.int64))
    labels = out["bounding_boxes"]["labels"].numpy()
    boxes = out["bounding_boxes"]["boxes"].numpy()
    assert labels.tolist() == [0, 2, -1, -1, -1, -1]
    regions = _regions(out["segmentation_masks"].numpy())
    assert sorted(regions) == [0, 2]
    for box, label in zip(boxes[:2], labels[:2]):
        np.testing.assert_allclose(box, regions[int(label)], atol=1.5)
    np.testing.assert_array_equal(boxes[2:], -1)


def test_detection_data_keeps_static_shapes_and_boxes_inside_the_image():
    compose = A.Compose([A.HorizontalFlip(p=0.5), A.Affine(rotate=(-20, 20), p=1.0)],
                        bbox_params=BOXES)
    data = vk.data.shapes("detection", n=24, image_size=(32, 40), batch_size=8, seed=0,
                          augment=compose)
    images_spec, targets_spec = data.train.element_spec
    assert images_spec.shape.as_list() == [None, 32, 40, 3]
    assert targets_spec["boxes"].shape.as_list() == [None, 4, 4]
    assert targets_spec["labels"].shape.as_list() == [None, 4]
    for _, targets in data.train:
        boxes, labels = targets["boxes"].numpy(), targets["labels"].numpy()
        real = boxes[labels >= 0]
        assert np.all(real >= 0) and np.all(real[:, [0, 2]] <= 40) and np.all(real[:, [1, 3]] <= 32)
        assert np.all(real[:, 2] - real[:, 0] >= 1) and np.all(real[:, 3] - real[:, 1] >= 1)
        assert np.all(boxes[labels < 0] == -1)


def test_bad_compose_errors_say_what_to_do():
    with pytest.raises(ValueError, match=r'bbox_params=A\.BboxParams\(format="pascal_voc"'):
        vk.data.shapes("detection", n=20, augment=A.Compose([A.HorizontalFlip()]))
    coco = A.Compose([A.HorizontalFlip()], bbox_params=A.BboxParams(format="coco"))
    with pytest.raises(ValueError, match="received format='coco'"):
        vk.data.shapes("detection", n=20, augment=coco)
    with pytest.raises(TypeError, match=r"Wrap it: A\.Compose\(\[A\.HorizontalFlip"):
        vk.data.shapes(n=20, augment=A.HorizontalFlip())
    with pytest.raises(TypeError, match="Wrap them"):
        vk.data.shapes(n=20, augment=[A.HorizontalFlip(), A.VerticalFlip()])
    cropped = vk.data.shapes(n=20, image_size=(32, 32),
                             augment=A.Compose([A.RandomCrop(16, 16), A.HorizontalFlip()]))
    with pytest.raises(ValueError, match=r"transform 0 \(RandomCrop\) changes the image size "
                                         r"from 32x32 to 16x16.*A\.Resize\(32, 32\)"):
        cropped.train  # noqa: B018 - building the pipeline checks the size
    resized = cropped.with_augmentation(A.Compose([A.RandomCrop(16, 16), A.Resize(32, 32)]))
    assert next(iter(resized.train))[0].shape.as_list()[1:] == [32, 32, 3]
    normalized = vk.data.shapes(n=20, image_size=(16, 16), augment=A.Compose([A.Normalize()]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="leave Normalize"):
        next(iter(normalized.train))


def test_borders_that_copy_objects_are_refused_for_boxes():
    from visionkit.data.albumentations_bridge import check_compose

    # albumentations 1.x's habit, border_mode=cv2.BORDER_REFLECT_101 (4): an object at
    # the left edge shifted right by 2 columns comes back mirrored where it was, and
    # albumentations boxes the copy too: more boxes than the image's rows hold (training
    # stopped: "returned 7 boxes for an image with room for 4").
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, :2] = 200
    shift = A.Compose([A.Affine(translate_px={"x": 2, "y": 0}, border_mode=4, p=1.0)],
                      bbox_params=BOXES)
    out = shift(image=image, bboxes=np.array([[0.0, 0.0, 2.0, 4.0]]), labels=[1])
    np.testing.assert_allclose(out["bboxes"], [[0, 0, 2, 4], [2, 0, 4, 4]])
    for border_mode, name in ((2, "BORDER_REFLECT"), (3, "BORDER_WRAP"),
                              (4, "BORDER_REFLECT_101")):
        nested = A.Compose([A.HorizontalFlip(), A.OneOf([
            A.Rotate(limit=10, border_mode=border_mode), A.Blur()])], bbox_params=BOXES)
        with pytest.raises(ValueError, match=rf"Rotate\(border_mode=cv2\.{name}\).*"
                                             r"cv2\.BORDER_CONSTANT"):
            check_compose(nested, "detection")
        assert check_compose(nested, "segmentation") is nested
    kept = A.Compose([A.Rotate(limit=10), A.PadIfNeeded(8, 8, border_mode=1)],
                     bbox_params=BOXES)
    assert check_compose(kept, "detection") is kept


RECIPE = """
name: shapes_albumentations
task: detection
data:
  source: shapes
  n: 20
  image_size: [32, 32]
  batch_size: 4
  augment:
    albumentations:
      - {transform: HorizontalFlip, p: 0.5}
      - {transform: RandomBrightnessContrast, p: 0.3, brightness_limit: 0.1}
      - transform: OneOf
        p: 0.8
        transforms:
          - {transform: Blur, blur_limit: 3}
          - {transform: GaussNoise, p: 0.5}
    bbox_params: {min_visibility: 0.25}
model:
  name: simple_cnn
"""


def test_recipe_round_trip_builds_the_named_transforms(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    data = data_from_recipe(load_recipe(path))
    compose = data.augment
    assert isinstance(compose, A.Compose)
    names = [(type(t).__name__, t.p) for t in compose.transforms]
    assert names == [("HorizontalFlip", 0.5), ("RandomBrightnessContrast", 0.3), ("OneOf", 0.8)]
    assert compose.transforms[1].brightness_limit == (-0.1, 0.1)
    assert [type(t).__name__ for t in compose.transforms[2].transforms] == ["Blur", "GaussNoise"]
    params = compose.processors["bboxes"].params
    assert (params.format, list(params.label_fields), params.min_visibility) == \
        ("pascal_voc", ["labels"], 0.25)
    images, targets = next(iter(data.train))
    assert images.shape.as_list() == [4, 32, 32, 3] and targets["labels"].shape.as_list() == [4, 4]


@pytest.mark.parametrize("entries, message", [
    ([{"transform": "HorizontalFlip"}, {"transform": "RandomBrightnesContrast"}],
     r"data\.augment\.albumentations\[1\]: 'RandomBrightnesContrast' is not an albumentations "
     r"transform\. Did you mean 'RandomBrightnessContrast'"),
    ([{"transform": "OneOf", "transforms": [{"transform": "Blurr"}]}],
     r"albumentations\[0\]\.transforms\[0\]: 'Blurr' .* Did you mean 'Blur'"),
    ([{"transform": "HorizontalFlip", "probability": 0.5}],
     r"albumentations\[0\]: HorizontalFlip takes no argument\(s\) probability"),
    ([{"p": 0.5}], r"albumentations\[0\]: expected a mapping with a 'transform' key"),
])
def test_recipe_names_the_bad_transform_entry(entries, message):
    raw = {"name": "bad", "data": {"source": "digits", "augment": {"albumentations": entries}},
           "model": {"name": "simple_cnn"}}
    with pytest.raises(RecipeError, match=message):
        parse_recipe(raw)


def test_recipe_misspelt_section_key_gets_a_suggestion():
    raw = {"name": "bad", "data": {"source": "digits",
                                   "augment": {"albumentation": [{"transform": "Blur"}]}},
           "model": {"name": "simple_cnn"}}
    with pytest.raises(RecipeError, match="Did you mean 'albumentations'"):
        parse_recipe(raw)


def test_compose_from_entries_matches_a_hand_built_compose():
    built = compose_from_entries([{"transform": "Affine", "rotate": [-10, 10], "p": 0.4}])
    by_hand = A.Compose([A.Affine(rotate=(-10, 10), p=0.4)])
    assert A.to_dict(built) == A.to_dict(by_hand)


def test_a_mask_interpolation_that_blends_class_ids_is_refused_and_nearest_keeps_them():
    import cv2

    mask = np.zeros((32, 32), np.int32)
    mask[:, 16:] = 2
    mask[8:24, 8:24] = 255
    example = {"images": tf.zeros((32, 32, 3)), "segmentation_masks": tf.constant(mask)}
    nearest = A.Compose([A.Affine(rotate=(30, 30), p=1.0)])
    out = albumentations_augmenter(nearest, "segmentation")(example, tf.constant([0, 1]))
    assert set(np.unique(out["segmentation_masks"].numpy())) <= {0, 2, 255}
    for blending in (A.Compose([A.Affine(rotate=(30, 30), mask_interpolation=cv2.INTER_LINEAR)]),
                     A.Compose([A.OneOf([A.HorizontalFlip(),
                                         A.Rotate(mask_interpolation=cv2.INTER_CUBIC)])])):
        with pytest.raises(ValueError, match=r"received (Affine|Rotate)\(mask_interpolation="
                                             r"[12]\), which blends the ids"):
            albumentations_augmenter(blending, "segmentation")
    # Classification has no masks: the same Compose is fine there.
    albumentations_augmenter(A.Compose([A.Affine(mask_interpolation=cv2.INTER_LINEAR)]),
                             "classification")
