"""Graph code of visionkit's augmentation presets: crops, composed warps, flips, jitter.

Every function draws its random parameters from an explicit stateless seed (`[2]`
int), so the pipeline can run it in parallel and still repeat exactly under a seed.
Batches are dicts in the vocabulary Keras augmentation layers speak (after the task's
`prepare_augmented`): `images` float32 `[B, H, W, C]`, `segmentation_masks` `[B, H, W,
1]` (class ids shifted by one, so a fill of 0 marks pixels from outside the image) and
`bounding_boxes = {"boxes": [B, N, 4] xyxy pixels, "labels": [B, N]}`.

Geometry follows Keras's image layers: a transform is a 3x3 matrix that maps *output*
pixel coordinates to *input* ones (pixel centres at integer coordinates), the
convention of `ImageProjectiveTransformV3`. Applying layers one after another with
matrices `M1, M2, ...` equals one warp with `M1 @ M2 @ ...`: the geometric preset
composes them and warps once.

Example:

>>> import numpy as np
>>> matrix = compose([flip_matrix(tf.constant([True]), 4), translation_matrix(
...     tf.constant([1.0]), tf.constant([0.0]))])
>>> matrix.numpy()[0].round(3).tolist()  # x_in = 3 - (x_out - 1)
[[-1.0, 0.0, 4.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

__all__ = ["compose", "crop_batch", "flip_example", "flip_matrix", "jitter", "rotation_matrix",
           "sample_crop", "shift_batch", "translation_matrix", "warp_batch", "zoom_matrix"]

IMAGES, MASKS, BOXES = "images", "segmentation_masks", "bounding_boxes"


def uniform(seed: tf.Tensor, shape, low: float, high: float) -> tf.Tensor:
    """Stateless uniform floats in `[low, high)`."""
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def sub_seed(seed: tf.Tensor, index: int) -> tf.Tensor:
    """An independent stateless seed for the `index`-th random draw of a transform."""
    seed = tf.cast(seed, tf.int64)
    return tf.stack([seed[0], seed[1] * 1_000_003 + index])


# -- random resized crop -----------------------------------------------------------------
def sample_crop(seed: tf.Tensor, count, height, width, scale: tuple[float, float],
                ratio: tuple[float, float]) -> tf.Tensor:
    """Random resized crop windows as fractions `(y, x, height, width)` of the image.

    The window's area is a fraction `scale` of the image's and its aspect ratio
    (width / height, in pixels) is log-uniform in `ratio`; a side longer than the image
    is shortened to fit (which only happens near the ends of the ranges). The offset is
    uniform over the positions that keep the window inside.

    Args:
        seed: stateless seed `[2]`.
        count: number of windows.
        height, width: the image's size in pixels (scalars).
        scale: `(low, high)` area fraction.
        ratio: `(low, high)` aspect ratio.

    Returns:
        float32 `[count, 4]` fractions in 0..1.
    """
    # One random draw for everything (each op costs time per example in tf.data).
    draws = tf.random.stateless_uniform(tf.stack([count, 4]), seed=seed)
    area = scale[0] + (scale[1] - scale[0]) * draws[:, 0]
    low, high = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(low + (high - low) * draws[:, 1]) * (tf.cast(height, tf.float32)
                                                          / tf.cast(width, tf.float32))
    extent = tf.minimum(tf.sqrt(area[:, None] * tf.stack([1.0 / aspect, aspect], axis=-1)),
                        1.0)  # (height, width)
    return tf.concat([draws[:, 2:] * (1.0 - extent), extent], axis=-1)


def crop_window(fractions: tf.Tensor, height, width) -> tf.Tensor:
    """One window of fractions `[4]` -> int32 `(y, x, height, width)` pixels inside."""
    size = tf.cast(tf.stack([height, width]), tf.float32)
    extent = tf.clip_by_value(tf.round(fractions[2:] * size), 1.0, size)
    offset = tf.minimum(tf.floor(fractions[:2] * size), size - extent)
    return tf.cast(tf.concat([offset, extent], axis=0), tf.int32)


def crop_boxes(boxes: tf.Tensor, window: tf.Tensor, out_size: tuple[int, int]) -> tf.Tensor:
    """xyxy pixel-edge boxes `[..., N, 4]` of the source -> boxes of the resized window.

    `window` is `(y, x, height, width)` in the same pixels as `boxes` (broadcast over the
    leading dimensions: `[4]` or `[B, 4]`). Clipping and dropping is left to the task.
    """
    window = tf.cast(window, tf.float32)
    if window.shape.rank == 2:
        window = window[:, None, :]
    scale_y = out_size[0] / window[..., 2]
    scale_x = out_size[1] / window[..., 3]
    return tf.stack([(boxes[..., 0] - window[..., 1]) * scale_x,
                     (boxes[..., 1] - window[..., 0]) * scale_y,
                     (boxes[..., 2] - window[..., 1]) * scale_x,
                     (boxes[..., 3] - window[..., 0]) * scale_y], axis=-1)


def crop_batch(inputs: dict, fractions: tf.Tensor) -> dict:
    """A random resized crop of a whole batch in one `tf.image.crop_and_resize` per key.

    Images are sampled bilinearly, masks with nearest neighbour (ids stay ids), boxes
    mapped through the same crop (the task clips them and pads those that left it).
    Output pixels are sampled at their centres, as `tf.image.resize` samples them
    (half-pixel centres): when an enlarged window touches the image's edge, its outer
    samples fall up to half a pixel outside the image and take the edge pixel, as in
    `tf.image.resize` of the window (the path file sources take), where bare
    `crop_and_resize` would fill them with 0: a black line along the image's edge, and
    mask pixels marked as outside the image.

    Args:
        inputs: batch dict (see the module docstring).
        fractions: float32 `[B, 4]` windows `(y, x, height, width)` from `sample_crop`.
    """
    images = inputs[IMAGES]
    height, width = int(images.shape[1]), int(images.shape[2])
    # crop_and_resize samples pixel centres: window edge e (fraction) -> centre
    # coordinate e * size - 0.5, normalized by (size - 1).
    y1 = fractions[:, 0] * height
    x1 = fractions[:, 1] * width
    y2 = y1 + fractions[:, 2] * height
    x2 = x1 + fractions[:, 3] * width
    # Centres of the first and last output pixel, in input pixel-centre coordinates.
    step_y = (y2 - y1) / height
    step_x = (x2 - x1) / width
    top = y1 + 0.5 * step_y - 0.5
    left = x1 + 0.5 * step_x - 0.5
    bottom = y2 - 0.5 * step_y - 0.5
    right = x2 - 0.5 * step_x - 0.5
    # The outer samples lie up to half a pixel outside the image, where crop_and_resize
    # would extrapolate with 0: sample a copy with its edge pixels repeated once around
    # it instead (pixel-centre coordinates shift by one), which clamps them to the edge.
    boxes = tf.stack([(top + 1.0) / (height + 1), (left + 1.0) / (width + 1),
                      (bottom + 1.0) / (height + 1), (right + 1.0) / (width + 1)], axis=-1)
    index = tf.range(tf.shape(images)[0])
    out = dict(inputs)
    out[IMAGES] = tf.image.crop_and_resize(_pad_edges(images), boxes, index, (height, width))
    if MASKS in inputs:
        masks = _pad_edges(tf.cast(inputs[MASKS], tf.float32))
        out[MASKS] = tf.cast(tf.image.crop_and_resize(masks, boxes, index, (height, width),
                                                      method="nearest"),
                             inputs[MASKS].dtype)
    if BOXES in inputs:
        window = tf.stack([y1, x1, y2 - y1, x2 - x1], axis=-1)
        targets = dict(inputs[BOXES])
        targets["boxes"] = crop_boxes(tf.cast(targets["boxes"], tf.float32), window,
                                      (height, width))
        out[BOXES] = targets
    return out


def _pad_edges(images: tf.Tensor) -> tf.Tensor:
    """`[B, H, W, C]` -> `[B, H + 2, W + 2, C]`, each edge pixel repeated once outside."""
    return tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")


# -- projective matrices (Keras's conventions) -------------------------------------------
def _matrix(rows: list[list[tf.Tensor | float]], count) -> tf.Tensor:
    ones = tf.ones([count], tf.float32)
    return tf.stack([tf.stack([entry * ones for entry in row], axis=-1) for row in rows],
                    axis=-2)


def flip_matrix(flip: tf.Tensor, width: int) -> tf.Tensor:
    """Horizontal flip where `flip` `[B]` is True: `x_in = (W - 1) - x_out`."""
    sign = tf.where(flip, -1.0, 1.0)
    shift = tf.where(flip, float(width - 1), 0.0)
    return _matrix([[sign, 0.0, shift], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], tf.shape(flip)[0])


def rotation_matrix(degrees: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Rotation about the image centre, as `keras.layers.RandomRotation` builds it."""
    angle = degrees * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    return _matrix([[cos, -sin, cx - cx * cos + cy * sin],
                    [sin, cos, cy - cx * sin - cy * cos],
                    [0.0, 0.0, 1.0]], tf.shape(degrees)[0])


def zoom_matrix(zoom_y: tf.Tensor, zoom_x: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Zoom about the centre, as `keras.layers.RandomZoom` builds it (> 1 zooms out)."""
    return _matrix([[zoom_x, 0.0, 0.5 * (width - 1) * (1.0 - zoom_x)],
                    [0.0, zoom_y, 0.5 * (height - 1) * (1.0 - zoom_y)],
                    [0.0, 0.0, 1.0]], tf.shape(zoom_x)[0])


def translation_matrix(shift_x: tf.Tensor, shift_y: tf.Tensor) -> tf.Tensor:
    """Shift by pixels, as `keras.layers.RandomTranslation` builds it."""
    return _matrix([[1.0, 0.0, -shift_x], [0.0, 1.0, -shift_y], [0.0, 0.0, 1.0]],
                   tf.shape(shift_x)[0])


def compose(matrices: list[tf.Tensor]) -> tf.Tensor:
    """The one matrix equal to warping with `matrices[0]`, then `matrices[1]`, ...

    Each warp maps output to input coordinates, so the first transform applied is the
    leftmost factor.
    """
    result = matrices[0]
    for matrix in matrices[1:]:
        result = tf.matmul(result, matrix)
    return result


def keras_transform(matrix: tf.Tensor) -> tf.Tensor:
    """`[B, 3, 3]` -> the `[B, 8]` vector `ImageProjectiveTransformV3` takes."""
    matrix = matrix / matrix[:, 2:3, 2:3]
    return tf.reshape(matrix, [-1, 9])[:, :8]


FILL_MODES = ("reflect", "constant")


def warp(images: tf.Tensor, matrix: tf.Tensor, interpolation: str = "BILINEAR",
         fill_value: float = 0.0, fill_mode: str = "constant") -> tf.Tensor:
    """One projective warp of a batch: Keras's own `keras.ops.image.affine_transform`
    (the op its image layers use).

    `fill_mode` says what the warp brings in from outside the image, as in Keras's
    layers: "constant" (`fill_value`) or "reflect" (the image mirrored about its edge
    pixels, Keras's default).
    """
    dtype = images.dtype
    warped = keras.ops.image.affine_transform(
        tf.cast(images, tf.float32), keras_transform(matrix),
        interpolation=interpolation.lower(), fill_mode=fill_mode, fill_value=fill_value,
        data_format="channels_last")
    return tf.cast(warped, dtype)


def transform_boxes(boxes: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """The enclosing boxes of the warped corners of xyxy pixel-edge boxes `[B, N, 4]`."""
    inverse = tf.linalg.inv(matrix)  # input -> output coordinates
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    # Corners as pixel-centre coordinates (edge e is centre coordinate e - 0.5).
    xs = tf.stack([x1, x2, x1, x2], axis=-1) - 0.5
    ys = tf.stack([y1, y1, y2, y2], axis=-1) - 0.5
    points = tf.stack([xs, ys, tf.ones_like(xs)], axis=-1)  # [B, N, 4, 3]
    moved = tf.einsum("bij,bnkj->bnki", inverse, points)
    out_x = moved[..., 0] / moved[..., 2] + 0.5
    out_y = moved[..., 1] / moved[..., 2] + 0.5
    return tf.stack([tf.reduce_min(out_x, -1), tf.reduce_min(out_y, -1),
                     tf.reduce_max(out_x, -1), tf.reduce_max(out_y, -1)], axis=-1)


def warp_batch(inputs: dict, matrix: tf.Tensor, fill_mode: str = "constant") -> dict:
    """Warps images (bilinear), masks (nearest) and boxes with one matrix each.

    With `fill_mode="constant"` images are filled with 0 and masks with 0 (which the
    segmentation task turns into 255, ignore); with "reflect" images and masks are both
    mirrored about their edges, so every pixel keeps a label that matches its content.
    """
    out = dict(inputs)
    out[IMAGES] = warp(inputs[IMAGES], matrix, fill_mode=fill_mode)
    if MASKS in inputs:
        out[MASKS] = warp(inputs[MASKS], matrix, interpolation="NEAREST", fill_mode=fill_mode)
    if BOXES in inputs:
        targets = dict(inputs[BOXES])
        targets["boxes"] = transform_boxes(tf.cast(targets["boxes"], tf.float32), matrix)
        out[BOXES] = targets
    return out


def _mirrored(index: tf.Tensor, size: int) -> tf.Tensor:
    """Indices outside `0..size - 1` mirrored about the edge, the edge pixel repeated
    (`d c b a | a b c d | d c b a`, Keras's "reflect"), any distance away."""
    period = 2 * size
    index = tf.math.floormod(index, period)
    return tf.where(index < size, index, period - 1 - index)


def shift_batch(inputs: dict, matrix: tf.Tensor, fill_mode: str = "constant") -> dict:
    """`warp_batch` for whole-pixel shifts and horizontal flips, by copying pixels.

    `matrix` `[B, 3, 3]` must map output to input pixels as `x_in = +-x_out + c`,
    `y_in = y_out + f` with whole numbers `c` and `f` (a flip and a shift, rounded, as
    the "light" preset draws them). The result equals `warp_batch` with that matrix
    (images, masks and boxes, same `fill_mode`), but each pixel is one read instead of a
    bilinear sample (and, with "reflect", a mirrored coordinate per sample): 0.46 ms
    instead of 1.76 ms of CPU per 224x224 RGB image with "reflect", 0.55 instead of
    1.35 ms with "constant" (one thread, batches of 32).
    """
    images = inputs[IMAGES]
    height, width = int(images.shape[1]), int(images.shape[2])
    integer = tf.cast(tf.round(matrix), tf.int32)
    rows = tf.range(height)[None, :] + integer[:, 1, 2:3]  # [B, H]
    columns = integer[:, 0, 0:1] * tf.range(width)[None, :] + integer[:, 0, 2:3]  # [B, W]
    reflect = fill_mode == "reflect"
    if reflect:
        rows, columns = _mirrored(rows, height), _mirrored(columns, width)
    else:  # every index outside reads a border of zeros added around the image
        rows = tf.clip_by_value(rows, -1, height) + 1
        columns = tf.clip_by_value(columns, -1, width) + 1

    def move(values: tf.Tensor) -> tf.Tensor:
        if not reflect:
            values = tf.pad(values, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return tf.gather(tf.gather(values, rows, axis=1, batch_dims=1), columns, axis=2,
                         batch_dims=1)

    out = dict(inputs)
    out[IMAGES] = move(images)
    if MASKS in inputs:
        out[MASKS] = move(inputs[MASKS])
    if BOXES in inputs:
        targets = dict(inputs[BOXES])
        targets["boxes"] = transform_boxes(tf.cast(targets["boxes"], tf.float32), matrix)
        out[BOXES] = targets
    return out


def flip_batch(inputs: dict, flip: tf.Tensor) -> dict:
    """Horizontal flip of the images where `flip` `[B]` is True (no interpolation)."""
    out = dict(inputs)
    where = flip[:, None, None, None]
    out[IMAGES] = tf.where(where, tf.reverse(inputs[IMAGES], [2]), inputs[IMAGES])
    if MASKS in inputs:
        out[MASKS] = tf.where(where, tf.reverse(inputs[MASKS], [2]), inputs[MASKS])
    if BOXES in inputs:
        width = float(inputs[IMAGES].shape[2])
        targets = dict(inputs[BOXES])
        boxes = tf.cast(targets["boxes"], tf.float32)
        mirrored = tf.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0],
                             boxes[..., 3]], axis=-1)
        targets["boxes"] = tf.where(flip[:, None, None], mirrored, boxes)
        out[BOXES] = targets
    return out


def flip_example(example: dict, flip: tf.Tensor) -> dict:
    """Horizontal flip of one example (`images` `[H, W, C]`, masks `[H, W]`, boxes
    `[N, 4]` with -1 padding rows) when the scalar `flip` is True."""
    def mirrored() -> dict:
        out = dict(example)
        out[IMAGES] = tf.reverse(example[IMAGES], [1])
        if MASKS in example:
            out[MASKS] = tf.reverse(example[MASKS], [1])
        if BOXES in example:
            width = float(example[IMAGES].shape[1])
            targets = dict(example[BOXES])
            boxes = tf.cast(targets["boxes"], tf.float32)
            moved = tf.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                              boxes[:, 3]], axis=-1)
            targets["boxes"] = tf.where((targets["labels"] >= 0)[:, None], moved, boxes)
            out[BOXES] = targets
        return out

    return tf.cond(flip, mirrored, lambda: dict(example))


def jitter(images: tf.Tensor, draws: tf.Tensor, brightness: float, contrast: float
           ) -> tf.Tensor:
    """Random brightness (+- `brightness` x 255) and contrast (x 1 +- `contrast`).

    Works on one image `[H, W, C]` (`draws`: 2 uniform numbers in 0..1) or a batch
    `[B, H, W, C]` (`draws` `[B, 2]`). Contrast scales about the image's mean grey level
    (one mean over pixels and channels: a per-channel mean costs 5x more on the CPU and
    barely differs); the result is clipped to 0..255.
    """
    if images.shape.rank == 4:
        draws, axes = draws[:, None, None, :], [1, 2, 3]
    else:
        axes = None
    delta = (2.0 * draws[..., 0:1] - 1.0) * (brightness * 255.0)
    factor = 1.0 + (2.0 * draws[..., 1:2] - 1.0) * contrast
    mean = tf.reduce_mean(images, axis=axes, keepdims=axes is not None)
    return tf.clip_by_value(images * factor + (mean * (1.0 - factor) + delta), 0.0, 255.0)
