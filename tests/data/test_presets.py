"""Augmentation presets: the composed warp against Keras's layers, crops, masks and boxes."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import visionkit as vk
from visionkit.data import augment as augment_module
from visionkit.data import transforms
from visionkit.data.augment import Geometric, RandomResizedCrop, preset_layers
from visionkit.data.decoding import FileDecoder, decode_rgb

PRESETS = ("none", "light", "standard", "geometric")
HEIGHT, WIDTH = 24, 32  # non-square on purpose


def keras_matrix(vector) -> np.ndarray:
    """Keras's `[B, 8]` transform vectors as `[B, 3, 3]` matrices."""
    vector = np.asarray(vector, np.float64)
    return np.concatenate([vector, np.ones((len(vector), 1))], axis=1).reshape(-1, 3, 3)


def ramp_images(count: int) -> tf.Tensor:
    """Linear ramps: bilinear sampling of a linear function is exact, so one warp and a
    chain of warps agree wherever both sample inside the image."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    images = np.stack([3 * x + 5 * y + 10 * c for c in range(3)], axis=-1)
    return tf.constant(np.repeat(images[None], count, axis=0))


def keras_parameters(images):
    """The four Keras layers of "geometric", with one random draw each."""
    layers = preset_layers("geometric", seed=3)
    return layers, [layer.get_random_transformation(images, training=True) for layer in layers]


def test_composed_matrix_equals_the_keras_layers_applied_one_after_another():
    images = ramp_images(6)
    layers, draws = keras_parameters(images)
    flip, rotation, zoom, translation = draws
    # The same parameters through visionkit's matrices, composed into one.
    flips = tf.reshape(flip["flips"], [-1])
    ours = transforms.compose([
        transforms.flip_matrix(flips, WIDTH),
        transforms.rotation_matrix(rotation["angle"], HEIGHT, WIDTH),
        transforms.zoom_matrix(zoom["height_zoom"][:, 0], zoom["width_zoom"][:, 0],
                               HEIGHT, WIDTH),
        transforms.translation_matrix(translation["translations"][:, 0],
                                      translation["translations"][:, 1])]).numpy()
    # Keras's own matrices, multiplied in the order the layers run.
    zooms = tf.concat([zoom["width_zoom"], zoom["height_zoom"]], axis=1)
    product = keras_matrix(rotation["rotation_matrix"]) \
        @ keras_matrix(layers[2]._get_zoom_matrix(zooms, HEIGHT, WIDTH)) \
        @ keras_matrix(layers[3]._get_translation_matrix(translation["translations"]))
    # The flip has no Keras matrix: it reverses columns, x_in = (W - 1) - x_out.
    flip_only = transforms.flip_matrix(flips, WIDTH).numpy()
    np.testing.assert_allclose(ours, flip_only @ product, rtol=1e-5, atol=1e-4)
    assert flips.numpy().any() and not flips.numpy().all()  # both cases are exercised

    # One warp with the composed matrix against the four layers' own warps in sequence,
    # filling with 0 so that the pixels no warp of the chain brought in from outside can
    # be told apart (mirrored borders would carry intermediate content inwards).
    for layer in layers[1:]:
        layer.fill_mode = "constant"
    sequential = images
    for layer, draw in zip(layers, draws):
        sequential = layer.transform_images(sequential, draw, training=True)
    composed = transforms.warp(images, tf.constant(ours, tf.float32))
    inside_sequential = tf.ones_like(images)
    for layer, draw in zip(layers, draws):
        inside_sequential = layer.transform_images(inside_sequential, draw, training=True)
    inside_composed = transforms.warp(tf.ones_like(images), tf.constant(ours, tf.float32))
    both = (inside_sequential.numpy() > 0.999) & (inside_composed.numpy() > 0.999)
    # One pixel away from any sample that touched the fill (an intermediate warp of the
    # chain may have sampled fill that the final ones-warp no longer shows).
    both[:, 1:-1, 1:-1] &= both[:, :-2, 1:-1] & both[:, 2:, 1:-1] & both[:, 1:-1, :-2] \
        & both[:, 1:-1, 2:]
    both[:, [0, -1]] = False
    both[:, :, [0, -1]] = False
    assert both.mean() > 0.3
    np.testing.assert_allclose(composed.numpy()[both], sequential.numpy()[both], atol=0.05)


def test_geometric_draws_the_same_distribution_as_the_keras_layers():
    count = 4000
    images = tf.zeros([count, HEIGHT, WIDTH, 1])
    layers, (flip, rotation, zoom, translation) = keras_parameters(images)
    zooms = tf.concat([zoom["width_zoom"], zoom["height_zoom"]], axis=1)
    flip_matrix = transforms.flip_matrix(tf.reshape(flip["flips"], [-1]), WIDTH).numpy()
    keras_matrices = flip_matrix @ keras_matrix(rotation["rotation_matrix"]) \
        @ keras_matrix(layers[2]._get_zoom_matrix(zooms, HEIGHT, WIDTH)) \
        @ keras_matrix(layers[3]._get_translation_matrix(translation["translations"]))
    ours = Geometric().matrix(tf.constant([5, 6], tf.int64), count, HEIGHT, WIDTH).numpy()
    for row, column in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]:
        theirs_entry, our_entry = keras_matrices[:, row, column], ours[:, row, column]
        spread = theirs_entry.std() + 1e-6
        assert abs(our_entry.mean() - theirs_entry.mean()) < 0.1 * spread + 1e-3
        assert abs(our_entry.std() - spread) < 0.1 * spread + 1e-3
        for quantile in (0.05, 0.5, 0.95):
            assert abs(np.quantile(our_entry, quantile) - np.quantile(theirs_entry, quantile)) \
                < 0.15 * spread + 1e-3


def shifted_windows(image: np.ndarray, pad: int) -> dict:
    """Every whole-pixel shift of `image` and of its mirror image (up to `pad` pixels),
    borders mirrored with the edge pixel repeated (NumPy's "symmetric", Keras's
    "reflect"): {(flipped, shift_y, shift_x): shifted image}."""
    windows = {}
    for flipped, source in ((False, image), (True, image[:, ::-1])):
        padded = np.pad(source, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                windows[flipped, dy, dx] = padded[pad - dy:pad - dy + HEIGHT,
                                                  pad - dx:pad - dx + WIDTH]
    return windows


def test_light_moves_whole_pixels_and_mirrors_the_border():
    # Random integer pixels: any sub-pixel shift would average neighbours into values
    # no shift of the input has, and a black border would match no mirrored window.
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (12, HEIGHT, WIDTH, 3)).astype(np.float32)
    light = augment_module._PRESET_BATCH_TRANSFORMS["light"]
    out = light({"images": tf.constant(images)}, tf.constant([3, 4], tf.int64))["images"]
    found = []
    for image, result in zip(images, out.numpy()):
        matches = [key for key, window in shifted_windows(image, 4).items()
                   if np.abs(window - result).max() < 1e-3]
        assert len(matches) == 1, matches
        found.append(matches[0])
    flips, shifts_y, shifts_x = zip(*found)
    assert any(flips) and not all(flips)
    # +-10% of 24 x 32 pixels: whole shifts of up to 2 rows and 3 columns, both ways.
    assert max(map(abs, shifts_y)) <= 2 and max(map(abs, shifts_x)) <= 3
    assert min(shifts_x) < 0 < max(shifts_x)


def test_the_light_keras_layers_shift_as_the_preset_does():
    # preset_layers("light") samples the shift at the nearest pixel: a whole-pixel shift
    # with mirrored borders, equal to the preset's warp at the rounded shift.
    rng = np.random.default_rng(2)
    images = tf.constant(rng.integers(0, 256, (6, HEIGHT, WIDTH, 3)).astype(np.float32))
    layer = preset_layers("light", seed=5)[1]
    draw = layer.get_random_transformation(images, training=True)
    theirs = layer.transform_images(images, draw, training=True).numpy()
    shifts = np.round(draw["translations"].numpy())
    assert (shifts != 0).any()
    ours = transforms.warp(images, transforms.translation_matrix(
        tf.constant(shifts[:, 0]), tf.constant(shifts[:, 1])), fill_mode="reflect").numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-3)


def test_the_light_keras_layers_keep_boxes_on_their_objects():
    # Keras shifts boxes by the exact sub-pixel amount: the pixels must move by the same
    # amount, so each box stays centred on its object's mass (a whole-pixel shift of
    # the image left boxes up to half a pixel off).
    image = np.zeros((6, 20, 20, 1), np.float32)
    image[:, 6:12, 5:11] = 200.0
    boxes = {"boxes": np.tile(np.array([[[5.0, 6.0, 11.0, 12.0]]], np.float32), (6, 1, 1)),
             "labels": np.ones((6, 1), np.int32)}
    layer = preset_layers("light", seed=3, bounding_box_format="xyxy")[1]
    out = layer({"images": image, "bounding_boxes": boxes}, training=True)
    moved, pixels = np.asarray(out["bounding_boxes"]["boxes"])[:, 0], np.asarray(out["images"])
    mass = pixels[..., 0].sum(axis=(1, 2))
    np.testing.assert_allclose(mass, 36 * 200.0, rtol=1e-4)  # no part left the image
    centre_x = (pixels[..., 0] * (np.arange(20) + 0.5)).sum(axis=(1, 2)) / mass
    centre_y = (pixels[..., 0] * (np.arange(20)[:, None] + 0.5)).sum(axis=(1, 2)) / mass
    np.testing.assert_allclose(centre_x, (moved[:, 0] + moved[:, 2]) / 2, atol=1e-3)
    np.testing.assert_allclose(centre_y, (moved[:, 1] + moved[:, 3]) / 2, atol=1e-3)
    assert np.abs(moved - np.round(moved)).max() > 0.1  # sub-pixel shifts were drawn


def test_detection_presets_fill_the_border_instead_of_mirroring_objects_without_boxes():
    from visionkit.vocabulary import get_task

    for name in ("light", "geometric"):
        assert augment_module.plan_augmentation(name, get_task("detection")).batch.fill_mode \
            == "constant"
        for task in ("classification", "segmentation"):
            assert augment_module.plan_augmentation(name, get_task(task)).batch.fill_mode \
                == "reflect"
    layers = preset_layers("geometric", seed=0, bounding_box_format="xyxy")
    assert {layer.fill_mode for layer in layers[1:]} == {"constant"}
    assert {layer.fill_mode for layer in preset_layers("geometric", seed=0)[1:]} == {"reflect"}
    with pytest.raises(ValueError, match="fill_mode"):
        Geometric(fill_mode="wrap")


def test_warped_boxes_enclose_the_moved_corners():
    # A 90-degree turn about the centre of a square image, hand-computed.
    matrix = transforms.rotation_matrix(tf.constant([90.0]), 10, 10)
    boxes = tf.constant([[[1.0, 2.0, 4.0, 3.0]]])  # x1, y1, x2, y2 (pixel edges)
    moved = transforms.transform_boxes(boxes, matrix).numpy()[0, 0]
    # Keras's rotation maps output to input by +90 degrees, so content turns by -90
    # degrees: the point (x, y) goes to (y, 10 - x) in pixel-edge coordinates.
    np.testing.assert_allclose(moved, [2.0, 6.0, 3.0, 9.0], atol=1e-4)
    # ... and the pixels agree: warp a one-box image.
    image = np.zeros((1, 10, 10, 1), np.float32)
    image[0, 2:3, 1:4] = 1.0
    warped = transforms.warp(tf.constant(image), matrix, interpolation="NEAREST").numpy()
    rows, columns = np.nonzero(warped[0, ..., 0])
    assert (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1) == (2, 6, 3, 9)


def test_crop_batch_maps_pixels_masks_and_boxes_the_same_way():
    image = np.zeros((1, 16, 16, 1), np.float32)
    image[0, 4:8, 4:8] = 200.0
    masks = (image[..., 0] > 0).astype(np.int32)[..., None] + 1
    inputs = {"images": tf.constant(image), "segmentation_masks": tf.constant(masks),
              "bounding_boxes": {"boxes": tf.constant([[[4.0, 4.0, 8.0, 8.0]]]),
                                 "labels": tf.constant([[0]])}}
    # The window (y, x, h, w) = (0.25, 0.25, 0.5, 0.5): pixels 4..12 scaled by 2.
    out = transforms.crop_batch(inputs, tf.constant([[0.25, 0.25, 0.5, 0.5]]))
    np.testing.assert_allclose(out["bounding_boxes"]["boxes"].numpy()[0, 0], [0, 0, 8, 8])
    mask = out["segmentation_masks"].numpy()[0, ..., 0]
    assert set(np.unique(mask)) == {1, 2}
    np.testing.assert_array_equal(mask[:8, :8], 2)
    assert (mask[8:, :] == 1).all() and (mask[:, 8:] == 1).all()
    pixels = out["images"].numpy()[0, ..., 0]
    assert (pixels[1:7, 1:7] == 200).all() and (pixels[9:, 9:] == 0).all()


def resized_window(image: np.ndarray, window, nearest: bool = False) -> np.ndarray:
    """A window `(y, x, height, width)` in pixels of `image` `[H, W, C]` resized to the
    image's size by a loop: output pixel centres at half-pixel positions, samples
    outside the image clamped to its edge (as `tf.image.resize` clamps them)."""
    size = image.shape[:2]
    out = np.zeros_like(image, dtype=np.float64)
    for i in range(size[0]):
        for j in range(size[1]):
            y, x = (window[k] + (index + 0.5) * window[k + 2] / size[k] - 0.5
                    for k, index in ((0, i), (1, j)))
            y, x = min(max(y, 0.0), size[0] - 1.0), min(max(x, 0.0), size[1] - 1.0)
            if nearest:
                out[i, j] = image[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]
                continue
            y0, x0 = min(int(y), size[0] - 2), min(int(x), size[1] - 2)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * (1 - dx) * image[y0, x0] + (1 - dy) * dx * image[y0, x0 + 1]
                         + dy * (1 - dx) * image[y0 + 1, x0] + dy * dx * image[y0 + 1, x0 + 1])
    return out


@pytest.mark.parametrize("window", [(0, 0, 3, 5), (3, 4, 3, 6), (2, 0, 4, 10)])
def test_crop_batch_keeps_the_edge_pixels_of_a_window_at_the_image_edge(window):
    # An enlarged window touching the image's edge samples up to half a pixel outside
    # it: the edge pixel, as resizing the window does, not a black line (nor masks
    # marking the line as outside the image, which segmentation turns into 255).
    rng = np.random.default_rng(4)
    image = rng.integers(1, 256, (6, 10, 2)).astype(np.float32)
    masks = rng.integers(1, 4, (6, 10, 1)).astype(np.int32)
    fractions = (np.array(window, np.float32) / [6, 10, 6, 10]).astype(np.float32)
    out = transforms.crop_batch({"images": tf.constant(image[None]),
                                 "segmentation_masks": tf.constant(masks[None])},
                                tf.constant(fractions[None]))
    np.testing.assert_allclose(out["images"].numpy()[0], resized_window(image, window),
                               atol=1e-3)
    np.testing.assert_array_equal(out["segmentation_masks"].numpy()[0],
                                  resized_window(masks, window, nearest=True))


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def smooth_picture(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 200], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decoding_a_window_matches_decoding_everything_then_cropping(tmp_path, fmt):
    pixels = smooth_picture(120, 160)
    path = tmp_path / "picture.jpg"  # a PNG behind a .jpg name: content decides
    Image.fromarray(pixels).save(path, format=fmt, quality=95)
    full = tf.io.decode_image(path.read_bytes(), channels=3).numpy().astype(np.float32)

    def fixed(height, width, seed):
        return tf.constant([30, 40, 60, 80])

    decoder = FileDecoder("path", (30, 40), lambda record, image, window, size: {
        "images": image, "window": window, "size": size})
    example = decoder.cropped({"path": tf.constant(str(path))}, fixed, tf.constant([0, 0]))
    assert example["window"].numpy().tolist() == [30, 40, 60, 80]
    assert example["size"].numpy().tolist() == [120, 160]
    # The window is 2x the target: JPEG decodes it DCT-scaled, close to an area resize.
    reference = tf.image.resize(full[30:90, 40:120], (30, 40), antialias=True).numpy()
    assert np.abs(example["images"].numpy() - reference).mean() < (3.0 if fmt == "JPEG"
                                                                   else 1.0)


def test_dct_scaled_decoding_is_only_used_for_jpeg_content_at_least_twice_the_target():
    contents = tf.constant(jpeg_bytes(smooth_picture(64, 96)))
    image, window, size = decode_rgb(contents, target_size=(16, 24))
    assert tuple(image.shape) == (16, 24, 3)  # ratio 4
    image, _, _ = decode_rgb(contents, target_size=(40, 40))
    assert tuple(image.shape) == (64, 96, 3)  # 64 < 2 x 40: full size
    image, _, _ = decode_rgb(contents, target_size=(16, 24), dct_scaling=False)
    assert tuple(image.shape) == (64, 96, 3)


def test_random_resized_crop_windows_stay_inside_and_follow_the_ranges():
    crop = RandomResizedCrop(scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3))
    fractions = crop.fractions(tf.constant([1, 2]), 2000, 300, 400).numpy()
    y, x, h, w = fractions.T
    assert (y >= 0).all() and (x >= 0).all() and (y + h <= 1 + 1e-6).all() \
        and (x + w <= 1 + 1e-6).all()
    area = h * w
    assert area.min() >= 0.35 - 1e-4 and area.max() <= 1.0 + 1e-6
    aspect = (w * 400) / (h * 300)
    clipped = (h >= 1 - 1e-6) | (w >= 1 - 1e-6)
    assert (aspect[~clipped] >= 0.75 - 1e-3).all() and (aspect[~clipped] <= 4 / 3 + 1e-3).all()
    window = crop.window(tf.constant(5), tf.constant(7), tf.constant([3, 4])).numpy()
    assert window[0] + window[2] <= 5 and window[1] + window[3] <= 7 and (window[2:] >= 1).all()


# -- every preset keeps masks exact and boxes inside, for array and file sources ----------
CLASS_GREY = (30, 130, 230)


def segmentation_arrays(count: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, HEIGHT, WIDTH), np.int32)
    for mask in masks:
        for class_id in (1, 2):
            y, x = rng.integers(0, HEIGHT - 8), rng.integers(0, WIDTH - 8)
            mask[y:y + int(rng.integers(6, 12)), x:x + int(rng.integers(6, 14))] = class_id
    images = np.repeat(np.asarray(CLASS_GREY, np.uint8)[masks][..., None], 3, axis=-1)
    return images, masks


def check_segmentation_batch(images: np.ndarray, masks: np.ndarray) -> None:
    assert masks.dtype == np.int32
    assert set(np.unique(masks)) <= {0, 1, 2, 255}  # no new class ids
    for image, mask in zip(images, masks):
        grey = image.mean(axis=-1)
        # Pixels whose 3x3 neighbourhood has one class: their grey level tells the class.
        padded = np.pad(mask, 1, mode="edge")
        same = np.ones_like(mask, bool)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                same &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]] == mask
        ranges = [(grey[same & (mask == c)].min(), grey[same & (mask == c)].max())
                  for c in (0, 1, 2) if (same & (mask == c)).any()]
        ranges.sort()
        for (_, upper), (lower, _) in zip(ranges, ranges[1:]):
            assert upper < lower  # classes never mix: masks moved with their images


def detection_arrays(count: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = np.full((count, HEIGHT, WIDTH, 3), 20, np.uint8)
    boxes, labels = [], []
    for image in images:
        x, y = int(rng.integers(1, WIDTH - 12)), int(rng.integers(1, HEIGHT - 10))
        w, h = int(rng.integers(6, 11)), int(rng.integers(5, 9))
        image[y:y + h, x:x + w] = 220
        boxes.append(np.array([[x, y, x + w, y + h]], np.float32))
        labels.append(np.array([0]))
    return images, boxes, labels


def check_detection_batch(images: np.ndarray, targets: dict) -> None:
    boxes, labels = targets["boxes"].numpy(), targets["labels"].numpy()
    height, width = images.shape[1:3]
    valid = labels >= 0
    assert valid.any()
    assert (boxes[valid] >= 0).all() and (boxes[valid][:, [0, 2]] <= width).all() \
        and (boxes[valid][:, [1, 3]] <= height).all()
    assert ((boxes[valid][:, 2] - boxes[valid][:, 0]) >= 1).all()
    assert (boxes[~valid] == -1).all()
    for image, image_boxes, image_valid in zip(images, boxes, valid):
        bright = image.mean(axis=-1) > 120
        # Interior bright pixels (all 4 neighbours bright) lie inside a kept box.
        core = bright[1:-1, 1:-1] & bright[:-2, 1:-1] & bright[2:, 1:-1] \
            & bright[1:-1, :-2] & bright[1:-1, 2:]
        rows, columns = np.nonzero(core)
        for row, column in zip(rows + 1.5, columns + 1.5):  # pixel centres
            inside = [(x1 - 1 <= column <= x2 + 1) and (y1 - 1 <= row <= y2 + 1)
                      for (x1, y1, x2, y2) in image_boxes[image_valid]]
            assert any(inside), (row, column, image_boxes)


def write_mask_folder(root, images, masks):
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for index, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray(image).save(root / "images" / f"{index}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{index}.png")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_keeps_masks_exact(tmp_path, preset):
    images, masks = segmentation_arrays()
    write_mask_folder(tmp_path, images, masks)
    sources = [
        vk.data.from_arrays(images, masks=masks, class_names=["bg", "a", "b"],
                            validation_split=0.0, batch_size=8, augment=preset, seed=1),
        vk.data.mask_folder(tmp_path / "images", tmp_path / "masks", image_size=(HEIGHT, WIDTH),
                            class_names=["bg", "a", "b"], validation_split=0.0, batch_size=8,
                            augment=preset, seed=1),
    ]
    for data in sources:
        batches = data.train.repeat()
        for batch_images, batch_masks in batches.take(2):
            check_segmentation_batch(batch_images.numpy(), batch_masks.numpy())


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_keeps_boxes_inside_and_on_their_objects(tmp_path, preset):
    from visionkit.data.detection import detection_from_arrays, detection_from_files

    images, boxes, labels = detection_arrays()
    paths = []
    for index, image in enumerate(images):
        # Larger JPEG files (4x), so the fused crop decodes DCT-scaled windows.
        big = np.asarray(Image.fromarray(image).resize((WIDTH * 4, HEIGHT * 4),
                                                       Image.NEAREST))
        path = tmp_path / f"{index}.jpg"
        Image.fromarray(big).save(path, quality=95)
        paths.append(str(path))
    scale = np.array([WIDTH, HEIGHT, WIDTH, HEIGHT], np.float32)
    sources = [
        detection_from_arrays(images, boxes, labels, ["thing"], validation_split=0.0,
                              batch_size=8, augment=preset, seed=2),
        detection_from_files(paths, [b / scale for b in boxes], labels, ["thing"],
                             image_size=(HEIGHT, WIDTH), validation_split=0.0, batch_size=8,
                             augment=preset, seed=2),
    ]
    for data in sources:
        for batch_images, targets in data.train.repeat().take(3):
            check_detection_batch(batch_images.numpy(), targets)


@pytest.mark.parametrize("preset", ["light", "standard", "geometric"])
def test_seeded_presets_repeat_exactly_and_change_every_epoch(tmp_path, preset):
    images, masks = segmentation_arrays(count=16)
    write_mask_folder(tmp_path, images, masks)

    def two_epochs():
        data = vk.data.mask_folder(tmp_path / "images", tmp_path / "masks",
                                   image_size=(HEIGHT, WIDTH), validation_split=0.0,
                                   batch_size=16, augment=preset, seed=7)
        return [(x.numpy(), y.numpy()) for x, y in data.train.repeat().take(2)]

    first, again = two_epochs(), two_epochs()
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], first[1][0])  # epoch 2 is augmented anew


def test_standard_crops_file_images_while_decoding(tmp_path):
    # One class per folder: left half dark, right half bright, 4x the target size. A
    # crop shows a part, so the bright share of pixels varies from image to image.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(4):
            pixels = np.zeros((96, 128, 3), np.uint8)
            pixels[:, 64:] = 255
            Image.fromarray(pixels).save(tmp_path / name / f"{index}.jpg", quality=95)
    data = vk.data.image_folder(tmp_path, image_size=(24, 32), batch_size=8,
                                validation_split=0.0, augment="standard", seed=0)
    images, _ = next(iter(data.train))
    assert tuple(images.shape) == (8, 24, 32, 3)
    shares = [(image.mean(axis=-1) > 128).mean() for image in images.numpy()]
    assert np.std(shares) > 0.02  # windows differ
    plain, _ = next(iter(data.with_augmentation("none").train))
    np.testing.assert_allclose([(im.mean(axis=-1) > 128).mean() for im in plain.numpy()], 0.5,
                               atol=0.05)


def test_preset_layers_offer_keras_equivalents_but_not_for_the_fused_crop():
    names = [type(layer).__name__ for layer in preset_layers("geometric", seed=0)]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation"]
    assert all(isinstance(layer, keras.layers.Layer) for layer in preset_layers("light"))
    with pytest.raises(ValueError, match="no Keras layer"):
        preset_layers("standard")
    with pytest.raises(ValueError, match="Unknown augmentation preset 'heavy'"):
        preset_layers("heavy")


def test_preset_layers_inside_a_mixed_precision_model_warp_in_float32_without_xla():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((8, 10, 1), dtype="uint8")
        augmented = inputs
        for layer in preset_layers("geometric", seed=0):
            augmented = layer(augmented)
        outputs = keras.layers.Dense(2, dtype="float32")(keras.layers.GlobalAveragePooling2D()(
            keras.layers.Conv2D(3, 3)(augmented)))
        model = keras.Model(inputs, outputs)
        assert augmented.dtype == "float32"
        with pytest.warns(UserWarning, match="jit_compile"):
            model.compile("sgd", "mse", jit_compile=True)
        assert model.jit_compile is False  # the warp has no XLA kernel
        images = np.random.default_rng(0).integers(0, 256, (4, 8, 10, 1)).astype(np.uint8)
        assert np.isfinite(model.train_on_batch(images, np.zeros((4, 2), np.float32)))
    finally:
        keras.config.set_dtype_policy(previous)


def test_standard_crops_images_turned_by_their_exif_orientation(tmp_path):
    # Stored 48x96 (dark left half, bright right half) with EXIF orientation 6: a viewer
    # turns it 90 degrees clockwise, so the dark half is on top and the boundary is a row.
    stored = np.zeros((48, 96, 3), np.uint8)
    stored[:, 48:] = 250
    exif = Image.Exif()
    exif[0x0112] = 6
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(4):
            Image.fromarray(stored).save(tmp_path / name / f"{index}.jpg", quality=95,
                                         exif=exif.tobytes())
    data = vk.data.image_folder(tmp_path, image_size=(32, 16), batch_size=8,
                                validation_split=0.0, augment="standard", seed=0)
    images, _ = next(iter(data.train.repeat()))
    rows_seen = 0
    for image in images.numpy():
        grey = image.mean(axis=-1)
        column_profile, row_profile = grey.mean(axis=0), grey.mean(axis=1)
        assert np.ptp(column_profile) < 20  # no boundary across the width
        rows_seen += np.ptp(row_profile) > 100
    assert rows_seen  # some crops show the boundary, as a row


@pytest.mark.parametrize("layer_format", ["yxyx", "xywh", "rel_xyxy"])
def test_a_keras_layer_told_another_box_format_fails_naming_it(layer_format):
    # visionkit's boxes are xyxy pixels: a layer reading them as another format would
    # move them wrongly (measured: every box of a flipped batch dropped).
    from visionkit.data.augment import build_augmenter
    from visionkit.vocabulary import get_task

    flip = keras.layers.RandomFlip("horizontal", seed=1, bounding_box_format=layer_format)
    with pytest.raises(ValueError, match=rf"layer 1 \(RandomFlip\) has bounding_box_format="
                                         rf"'{layer_format}', but detection boxes are 'xyxy'"):
        build_augmenter([keras.layers.RandomBrightness(0.1), flip], get_task("detection"))
    # Boxes in the task's format, or data without boxes, are fine.
    assert build_augmenter([flip], get_task("classification")) is not None
    assert build_augmenter([keras.layers.RandomFlip(bounding_box_format="xyxy")],
                           get_task("detection")) is not None


def test_a_keras_layer_mirroring_objects_without_boxes_fails_naming_it():
    from visionkit.data.augment import build_augmenter
    from visionkit.vocabulary import get_task

    # Keras's default fill: an object at the left edge shifted right by 2 columns comes
    # back mirrored in the columns it left, outside its box.
    image = np.zeros((1, 4, 8, 1), np.float32)
    image[..., :2, :] = 200.0
    shift = keras.layers.RandomTranslation(0.0, (0.25, 0.25), bounding_box_format="xyxy")
    out = shift({"images": image, "bounding_boxes": {
        "boxes": np.array([[[0.0, 0.0, 2.0, 4.0]]], np.float32),
        "labels": np.array([[1]], np.int32)}})
    np.testing.assert_allclose(out["bounding_boxes"]["boxes"][0, 0], [2, 0, 4, 4])
    np.testing.assert_allclose(np.asarray(out["images"])[0, 0, :, 0],
                               [200, 200, 200, 200, 0, 0, 0, 0])
    detection = get_task("detection")
    for fill_mode in ("reflect", "wrap"):
        layer = keras.layers.RandomRotation(0.1, fill_mode=fill_mode, bounding_box_format="xyxy")
        with pytest.raises(ValueError, match=rf"layer 1 \(RandomRotation\) has fill_mode="
                                             rf"'{fill_mode}'.*fill_mode='constant'"):
            build_augmenter([keras.layers.RandomFlip(bounding_box_format="xyxy"), layer],
                            detection)
        assert build_augmenter([layer], get_task("segmentation")) is not None
    assert build_augmenter(preset_layers("geometric", bounding_box_format="xyxy"),
                           detection) is not None
    # Refused when the data is made, before any pipeline is built; a lone layer too.
    plain = vk.data.shapes("detection", n=8, image_size=(16, 16))
    for augment in (keras.layers.RandomZoom(0.1, bounding_box_format="xyxy"),
                    [keras.layers.RandomZoom(0.1, fill_mode="wrap", bounding_box_format="xyxy")]):
        with pytest.raises(ValueError, match=r"layer 0 \(RandomZoom\) has fill_mode="):
            plain.with_augmentation(augment)


def test_a_keras_layer_filling_masks_with_a_class_id_fails_naming_it():
    # Keras fills masks with the layer's fill_value too: a grey border (128) became class
    # 127 in the masks, a fill of 1 class 0, where a fill of 0 becomes 255 (ignored).
    from visionkit.data.augment import build_augmenter
    from visionkit.vocabulary import get_task

    segmentation = get_task("segmentation")
    for layer, value in ((keras.layers.RandomTranslation(0.3, 0.3, fill_mode="constant",
                                                         fill_value=128.0), "127"),
                         (keras.layers.RandomRotation(0.2, fill_mode="constant",
                                                      fill_value=1.0), "0"),
                         (keras.layers.RandomPerspective(fill_value=128.0), "127")):
        with pytest.raises(ValueError, match=rf"layer 1 \({type(layer).__name__}\) has "
                                             rf"fill_mode='constant' with fill_value=.*"
                                             rf"as class {value}\."):
            build_augmenter([keras.layers.RandomBrightness(0.1), layer], segmentation)
        assert build_augmenter([layer], get_task("classification")) is not None
    # Mirrored borders, erasing (which leaves masks alone) and a fill of 0 are fine.
    assert build_augmenter([keras.layers.RandomTranslation(0.3, 0.3, fill_value=128.0),
                            keras.layers.RandomErasing(fill_value=128.0)],
                           segmentation) is not None
    shift = build_augmenter([keras.layers.RandomTranslation(
        (0.4, 0.4), (0.4, 0.4), fill_mode="constant", seed=1)], segmentation)
    out = shift({"images": tf.fill([1, 5, 5, 1], 50.0),
                 "segmentation_masks": tf.ones([1, 5, 5], tf.int32)})
    # A shift by 2 rows and 2 columns: what comes in from outside is black and ignored.
    expected = np.full((5, 5), 255)
    expected[2:, 2:] = 1
    np.testing.assert_array_equal(out["segmentation_masks"].numpy()[0], expected)
    np.testing.assert_array_equal(out["images"].numpy()[0, ..., 0], (expected == 1) * 50.0)


def test_recipe_keras_layer_entries_move_detection_boxes_without_naming_a_format():
    from visionkit.data.augment import build_augmenter
    from visionkit.run import augment_layers
    from visionkit.vocabulary import get_task

    entries = [{"layer": "RandomFlip", "mode": "horizontal"}]
    assert augment_layers(entries, 0, task="classification")[0].bounding_box_format is None
    layers = augment_layers(entries, 1, task="detection")
    assert layers[0].bounding_box_format == "xyxy"
    batch = {"images": tf.zeros([8, 16, 16, 3]), "bounding_boxes": {
        "boxes": tf.constant([[[1.0, 2.0, 5.0, 10.0]]] * 8),
        "labels": tf.constant([[1]] * 8)}}
    boxes = build_augmenter(layers, get_task("detection"))(batch)["bounding_boxes"]["boxes"]
    # Each box kept or mirrored about x = 8 (16 pixels wide); both happen in 8 images.
    rows = {tuple(row) for row in boxes.numpy()[:, 0].tolist()}
    assert rows == {(1.0, 2.0, 5.0, 10.0), (11.0, 2.0, 15.0, 10.0)}
    # An entry written as in Keras (its default border mirrors objects without boxes) is
    # refused naming the recipe's field; fill_mode: constant is taken.
    shift = {"layer": "RandomTranslation", "height_factor": 0.1, "width_factor": 0.1}
    with pytest.raises(ValueError, match=r"data\.augment: Keras augmentation layer 1 "
                                         r"\(RandomTranslation\) has fill_mode='reflect'"):
        augment_layers([*entries, shift], 1, task="detection")
    assert augment_layers([*entries, {**shift, "fill_mode": "constant"}], 1,
                          task="detection")[1].bounding_box_format == "xyxy"
    with pytest.raises(ValueError, match=r"data\.augment: .*fill_value=128"):
        augment_layers([{**shift, "fill_mode": "constant", "fill_value": 128}], 1,
                       task="segmentation")


def test_keras_random_crop_is_refused_for_boxes_while_it_moves_them_along_swapped_axes():
    from visionkit.data.augment import _keras_random_crop_moves_boxes_right, build_augmenter
    from visionkit.vocabulary import get_task

    # An independent check of the layer: a 10x10 crop 5 pixels from the left of a 10x20
    # image moves the box [2, 2, 8, 8] to x - 5 (clipped: [0, 2, 3, 8]).
    layer = keras.layers.RandomCrop(10, 10, bounding_box_format="xyxy")
    moved = layer.transform_bounding_boxes(
        {"boxes": np.array([[[2.0, 2.0, 8.0, 8.0]]], np.float32),
         "labels": np.array([[1]])}, (0, 5), training=True)["boxes"]
    right = np.allclose(np.asarray(moved), [[[0.0, 2.0, 3.0, 8.0]]])
    assert _keras_random_crop_moves_boxes_right() == right
    if right:  # a Keras version with the fix: the layer is used
        assert build_augmenter([layer], get_task("detection")) is not None
    else:
        with pytest.raises(ValueError, match=r"layer 0 \(RandomCrop\).*keras#23518"):
            build_augmenter([layer], get_task("detection"))
    assert build_augmenter([keras.layers.RandomCrop(10, 10)],
                           get_task("classification")) is not None


@pytest.mark.parametrize("fill_mode", ["reflect", "constant"])
def test_whole_pixel_shifts_copy_the_pixels_numpy_padding_moves(fill_mode):
    # Odd, non-square, one channel, and shifts beyond the image (mirrored again).
    height, width = 5, 7
    rng = np.random.default_rng(3)
    images = rng.integers(1, 256, (4, height, width, 1)).astype(np.float32)
    masks = rng.integers(1, 4, (4, height, width, 1)).astype(np.int32)
    flips, shift_x, shift_y = [False, True, True, False], [2.0, -3.0, 9.0, 0.0], \
        [-1.0, 4.0, -12.0, 0.0]
    matrix = transforms.compose([transforms.flip_matrix(tf.constant(flips), width),
                                 transforms.translation_matrix(tf.constant(shift_x),
                                                               tf.constant(shift_y))])
    out = transforms.shift_batch({"images": tf.constant(images),
                                  "segmentation_masks": tf.constant(masks)}, matrix, fill_mode)
    pad = 13
    for index in range(4):
        for key, source in (("images", images), ("segmentation_masks", masks)):
            picture = source[index, :, ::-1] if flips[index] else source[index]
            padded = np.pad(picture, ((pad, pad), (pad, pad), (0, 0)),
                            mode="symmetric" if fill_mode == "reflect" else "constant")
            top, left = pad - int(shift_y[index]), pad - int(shift_x[index])
            expected = padded[top:top + height, left:left + width]
            np.testing.assert_array_equal(out[key].numpy()[index], expected)
    assert out["segmentation_masks"].dtype == tf.int32
    # The same as the general warp with that matrix.
    warped = transforms.warp_batch({"images": tf.constant(images)}, matrix, fill_mode)
    np.testing.assert_allclose(out["images"].numpy(), warped["images"].numpy(), atol=1e-3)


def test_a_preset_stage_with_its_own_parameters_runs_where_the_preset_runs_it():
    # Geometric(...) as augment, as a transform object is passed in other libraries: it
    # failed inside tf.data ("missing 1 required positional argument: 'seed'").
    from visionkit.data.augment import FlipAndJitter

    def batches(augment, task="classification"):
        data = vk.data.shapes(task, n=16, image_size=(16, 16), seed=3, batch_size=8,
                              validation_split=0.0, augment=augment)
        return [[np.asarray(x), *map(np.asarray, y.values() if isinstance(y, dict) else [y])]
                for x, y in data.train.take(2)]

    light = Geometric(rotation=0.0, zoom=0.0, translation=0.1)
    for ours, theirs in zip(batches(light), batches("light")):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)
    twice = batches(Geometric(rotation=0.05, zoom=0.0, translation=0.0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(twice, batches(
        Geometric(rotation=0.05, zoom=0.0, translation=0.0))))
    assert not np.array_equal(twice[0][0], batches("none")[0][0])
    assert len(batches(FlipAndJitter(brightness=0.3))) == 2
    assert len(batches(RandomResizedCrop(scale=(0.5, 1.0)))) == 2
    # For boxes, the fill must be said: a mirrored border shows objects without boxes.
    with pytest.raises(ValueError, match=r"Expected Geometric\(fill_mode='constant'\) for "
                                         r"boxes; received Geometric\("):
        vk.data.shapes("detection", n=8, image_size=(16, 16), augment=Geometric())
    constant = Geometric(fill_mode="constant")
    for ours, theirs in zip(batches(constant, "detection"), batches("geometric", "detection")):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)
