"""Occlusion sensitivity: how much the target drops when a patch of the image is hidden.

Reference:
    - [Visualizing and Understanding Convolutional Networks](
      https://arxiv.org/abs/1311.2901) (Zeiler & Fergus, ECCV 2014)

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 24, 32, 3)).astype("float32")
>>> occlusion(model, images, target=1, patch_size=8, stride=4).shape
(2, 24, 32)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_int
from visionkit.interpret.progress import progress_bar
from visionkit.interpret.targets import target_key

__all__ = ["occlusion", "patch_positions"]


def patch_positions(size: int, patch_size: int, stride: int) -> np.ndarray:
    """Indicator `[positions, size]` of the pixels each patch covers along one axis.

    Patches start at every multiple of `stride` below `size` and are clipped at the border.
    """
    starts = np.arange(0, size, stride)
    pixels = np.arange(size)
    return ((pixels[None] >= starts[:, None]) &
            (pixels[None] < starts[:, None] + patch_size)).astype(np.float32)


def occlusion(model: keras.Model, images: Any, target: Any = None, patch_size: int = 8,
              stride: int = 4, baseline: float | str = "mean", batch_size: int = 256,
              task: Any = None, jit_compile: bool = False, verbose: int = 1,
              output: str | int | None = None) -> np.ndarray:
    """Occlusion sensitivity maps.

    A square patch of `patch_size`, placed at every multiple of `stride` from the top-left
    (clipped at the border), is set to `baseline`. For each pixel, the sensitivity is the
    mean, over the patches that cover it, of (target on the original - target on the
    occluded image). All occluded copies of all images go through the model in batches of
    `batch_size` inside one compiled loop.

    Args:
        model: a Keras model taking raw images.
        images: `[B, H, W, C]` (or one `[H, W, C]`) raw pixels, NumPy or tensor.
        target: a class id, one per image, a `Target`, or None (the predicted class).
        patch_size: side of the square patch in pixels, >= 1. Defaults to 8.
        stride: step between patch positions, in [1, patch_size] so that every pixel is
            covered by a patch. Defaults to 4.
        baseline: the value of hidden pixels: "mean" (the image's per-channel mean), a
            number, or one number per channel `[C]`. Defaults to "mean".
        batch_size: occluded copies per forward pass. Defaults to 256.
        task: task name or object for the target (None: asked from the model's outputs).
        jit_compile: compile the loop with XLA. Defaults to False (XLA convolutions are
            slower on CPUs; on a GPU pass True).
        verbose: 1 shows a progress bar over groups of images when there are several
            (each group is one compiled call of about `IMAGES_PER_CALL_COPIES` occluded
            copies); 0 shows nothing. Defaults to 1.
        output: the output explained, by name or index, for a model with several.

    Returns:
        float32 NumPy `[B, H, W]`: positive where hiding the pixels lowers the target.

    Raises:
        ArgumentError (a ValueError): naming `images`, `target`, `output`, `patch_size`,
            `stride` (a stride above the patch would leave pixels no patch covers),
            `baseline` or `batch_size`.
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images)
    patch_size = check_int(patch_size, "patch_size", minimum=1)
    stride = check_int(stride, "stride", minimum=1, maximum=patch_size)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    target_object = adapter.target(target, task, int(images.shape[0]))
    height, width = int(images.shape[1]), int(images.shape[2])
    rows = tf.constant(patch_positions(height, patch_size, stride))
    cols = tf.constant(patch_positions(width, patch_size, stride))
    fill = _fill(baseline, images)
    prepare, run = _occlusion_graph(adapter.scored, target_object, batch_size, jit_compile)
    # The choice (class, region) is fixed on all original images at once, so each group
    # is scored on its own rows of it.
    state, reference = prepare(images)
    per_image = int(rows.shape[0]) * int(cols.shape[0])
    group = max(1, IMAGES_PER_CALL_COPIES // per_image)
    count = int(images.shape[0])
    bar = progress_bar(-(-count // group), "group", verbose)
    maps = []
    for start in range(0, count, group):
        part = slice(start, start + group)
        maps.append(run(images[part], fill[part], rows, cols,
                        tuple(t[part] for t in state), reference[part]).numpy())
        bar.update()
    return check_finite_result(np.concatenate(maps), "occlusion")


def _fill(baseline: Any, images: tf.Tensor) -> tf.Tensor:
    """The hidden pixels' values `[B, 1, 1, C]`."""
    batch, channels = int(images.shape[0]), int(images.shape[-1])
    if isinstance(baseline, str) and baseline == "mean":
        return tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    values = None
    if not isinstance(baseline, (str, bool)):
        try:
            values = np.asarray(baseline, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            values = None
    if values is None or values.size not in (1, channels) or not np.all(np.isfinite(values)):
        raise ArgumentError("baseline", f"Expected baseline 'mean', a finite number or one "
                            f"number per channel ({channels}); received "
                            f"baseline={baseline!r:.80}.")
    return tf.constant(np.broadcast_to(values, (batch, 1, 1, channels)).copy())


# Occluded copies per compiled call (whole images only): the progress bar advances
# between calls, so it moves every few seconds on a CPU, without a host round trip per
# forward pass.
IMAGES_PER_CALL_COPIES = 4096


_CACHE: dict = {}


def _occlusion_graph(model, target, batch_size: int, jit_compile: bool):
    key = (id(model), target_key(target), batch_size, jit_compile)
    if key in _CACHE and _CACHE[key][2] is not model:
        _CACHE.clear()

    def prepare(images):
        original = model(images, training=False)
        state = target.prepare(original)
        return state, target.score(original, state)

    def run(images, fill, rows, cols, state, reference):
        num_rows, num_cols = tf.shape(rows)[0], tf.shape(cols)[0]
        per_image = num_rows * num_cols
        total = tf.shape(images)[0] * per_image
        drops = tf.TensorArray(tf.float32, size=(total + batch_size - 1) // batch_size)
        for chunk in tf.range(drops.size()):
            index = tf.minimum(chunk * batch_size + tf.range(batch_size), total - 1)
            image_index, patch = index // per_image, index % per_image
            mask = (tf.gather(rows, patch // num_cols)[:, :, None] *
                    tf.gather(cols, patch % num_cols)[:, None, :])[..., None]
            copies = (tf.gather(images, image_index) * (1.0 - mask) +
                      tf.gather(fill, image_index) * mask)
            chunk_state = tuple(tf.gather(t, image_index) for t in state)
            scores = target.score(model(copies, training=False), chunk_state)
            drops = drops.write(chunk, tf.gather(reference, image_index) - scores)
        drops = tf.reshape(drops.concat()[:total], [-1, num_rows, num_cols])
        summed = tf.einsum("bij,ih,jw->bhw", drops, rows, cols)
        counts = tf.einsum("i,j->ij", tf.reduce_sum(rows, 0), tf.reduce_sum(cols, 0))
        return summed / counts

    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = (tf.function(prepare, jit_compile=jit_compile, reduce_retracing=True),
                       tf.function(run, jit_compile=jit_compile, reduce_retracing=True), model)
    return _CACHE[key][:2]
