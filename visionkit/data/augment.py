"""Augmentation: visionkit's fast presets, the user's own Keras layers, or a callable.

Augmentation runs on the train split only (see `Data`). Spatial targets (segmentation
masks, bounding boxes) move with the images; class `labels` are held out and put back
unchanged, so no transform can alter them.

Presets (`PRESETS`) are visionkit's own graph code (`visionkit.data.transforms`), built
for throughput and drawing every random number from seeds the pipeline hands them, so
they run in parallel and still repeat exactly under a seed:

- "none": nothing.
- "light": horizontal flip and translation (+-10%, in whole pixels), as ONE copy of the
  pixels per batch (whole pixels need no resampling).
- "standard": a random resized crop (area 35-100% of the image, aspect ratio 3/4..4/3),
  then horizontal flip, brightness (+-10% of 255) and contrast (x 0.8..1.2). File
  sources fuse the crop into decoding (a JPEG decodes only the window, then one resize);
  in-memory and cached sources crop the whole batch with one `crop_and_resize`. The
  usual ImageNet range of area 8-100% throws away too much of each image for the small
  data sets visionkit is used with.
- "geometric": horizontal flip, rotation (+-10% of a turn), zoom (+-10%) and translation
  (+-10%) composed into one 3x3 matrix per image and applied as ONE warp per batch
  (bilinear for images, nearest for masks; boxes become the enclosing box of their
  moved corners, clipped to the image). Same distribution as the chain of Keras layers
  `preset_layers("geometric")`, which warps once per layer.

What a warp brings in from outside the image is the image mirrored about its edges
(Keras's default `fill_mode="reflect"`), masks mirrored with it, so training sees no
black borders that validation and serving never show; detection fills with black
instead (mirrored content would show objects without boxes). Masks keep exact class ids
(nearest neighbour); where a warp fills, mask pixels become 255 (ignore). Boxes stay
inside the image; a box that leaves it becomes -1 padding, counted and said once
(`visionkit.data.box_drops`).

One augmentation system: the presets are the Keras layers' own transforms (the matrices
of `keras.layers.RandomFlip`, `RandomRotation`, `RandomZoom`, `RandomTranslation`, a test
compares them, warped by Keras's `keras.ops.image.affine_transform`), fused and seeded;
`preset_layers` gives the same transforms as the Keras layers themselves, for augmenting
inside a model. The fused ops stay where `benchmarks/pipeline.py` measures them ahead of
the Keras layers in the same pipeline, and where a Keras layer cannot do the job:

- "geometric": 1.82x less CPU per image than the four Keras layers at 224x224 (one warp
  instead of three).
- the flip + brightness + contrast of "standard": 1.24x less CPU than RandomFlip +
  RandomBrightness + RandomContrast; the random resized crop has no Keras layer.
- "light": a copy of the pixels (`transforms.shift_batch`): 0.46 ms of CPU per 224x224
  image with mirrored borders, against 1.76 ms for the same shift as a warp (the op
  RandomTranslation runs; 1.35 ms with a black border), one thread. Kept also for what
  the Keras layers cannot give: Keras layers draw from their own state (their `seed` is an int or
  a `SeedGenerator`, never a per-element tensor), so a pipeline must run them one batch
  at a time to repeat under a seed, and a resumed run cannot replay an epoch's draws;
  the presets take the pipeline's per-element seeds, run in parallel, repeat exactly
  and resume exactly (light is fit's default for classification and segmentation).

Lists of Keras layers and callables run on whole batches as given, except that a
Keras layer whose fill would mislabel what it brings into the image is refused, naming
it: with boxes a mirrored or wrapped border (Keras's default `fill_mode="reflect"`), with
masks a constant `fill_value` other than 0 (see `build_augmenter`). An albumentations
Compose runs image by image (`visionkit.data.albumentations_bridge`).

Example:

>>> import keras
>>> from visionkit.data.augment import check_augment
>>> check_augment("light")
'light'
>>> check_augment([keras.layers.RandomFlip("horizontal")])  # doctest: +ELLIPSIS
[<RandomFlip ...>]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data import transforms
from visionkit.data.albumentations_bridge import check_compose, is_albumentations
from visionkit.data.box_drops import counter_for, track_dropped_boxes
from visionkit.vocabulary import BOUNDING_BOXES, IMAGES, LABELS, SEGMENTATION_MASKS, Task, get_task

__all__ = ["AugmentationPlan", "FlipAndJitter", "Geometric", "PRESETS", "RandomResizedCrop",
           "build_augmenter", "check_augment", "plan_augmentation", "preset_layers"]

PRESETS = ("none", "light", "standard", "geometric")

# Batch keys that augmentation never sees: they are restored unchanged afterwards.
_HELD_OUT_KEYS = ("labels",)


@dataclasses.dataclass(frozen=True)
class RandomResizedCrop:
    """A random window of the image, later resized to the target size.

    Args:
        scale: `(low, high)` fraction of the image's area the window covers.
        ratio: `(low, high)` aspect ratio (width / height) of the window, log-uniform.

    Example:

    >>> crop = RandomResizedCrop()
    >>> window = crop.window(tf.constant(480), tf.constant(640), tf.constant([1, 2]))
    >>> y, x, height, width = window.numpy().tolist()
    >>> 0 <= y and y + height <= 480 and 0 <= x and x + width <= 640
    True
    """

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def fractions(self, seed: tf.Tensor, count, height, width) -> tf.Tensor:
        """float32 `[count, 4]` windows `(y, x, height, width)` as fractions."""
        return transforms.sample_crop(seed, count, height, width, self.scale, self.ratio)

    def window(self, height: tf.Tensor, width: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """One window of an image of `height` x `width`: int32 `(y, x, height, width)`."""
        fractions = self.fractions(seed, 1, height, width)[0]
        return transforms.crop_window(fractions, height, width)


@dataclasses.dataclass(frozen=True)
class Geometric:
    """Random flip, rotation, zoom and translation as one projective warp per batch.

    Parameters follow the Keras layers of the same name: `rotation` is a fraction of a
    full turn (+-), `zoom` the +- change of scale (> 0 zooms out, same factor in both
    directions), `translation` the +- shift as a fraction of height and width.
    `fill_mode` is what the warp brings in from outside the image: "reflect" (the
    image and its mask mirrored about their edges, the edge pixel repeated: Keras's
    default), or "constant" (0: black pixels, and 255, ignore, in masks) where mirrored
    content would show objects with no box.

    Without rotation and zoom (the "light" preset) the shift is rounded to whole pixels
    and the pixels are copied (`transforms.shift_batch`) instead of interpolated. A
    sub-pixel shift blurs every training image (bilinear sampling halves the pixel
    noise's variance at a half-pixel shift and softens edges) while validation and
    serving see sharp images; black borders likewise appear only in training. Both
    slowed learning on 64x64 shapes: `simple_cnn` after 10 epochs at fit's defaults
    reached validation accuracy 0.883 with sub-pixel shifts and black borders, 0.985
    with whole-pixel shifts (black borders kept), 0.985 with reflected borders
    (sub-pixel shifts kept), and 0.985 without augmentation (one thread, seed 0).

    Example:

    >>> batch = {"images": tf.zeros([2, 8, 8, 3])}
    >>> out = Geometric()(batch, tf.constant([0, 1]))
    >>> tuple(out["images"].shape)
    (2, 8, 8, 3)
    """

    flip: bool = True
    rotation: float = 0.1
    zoom: float = 0.1
    translation: float = 0.1
    fill_mode: str = "reflect"

    def __post_init__(self) -> None:
        if self.fill_mode not in transforms.FILL_MODES:
            raise ValueError(f"Expected fill_mode in {transforms.FILL_MODES}; received "
                             f"{self.fill_mode!r}.")

    @property
    def whole_pixels(self) -> bool:
        """True without rotation and zoom: the shift is drawn in whole pixels and the
        pixels are copied (`transforms.shift_batch`), not resampled."""
        return not (self.rotation or self.zoom)

    def matrix(self, seed: tf.Tensor, count, height: int, width: int) -> tf.Tensor:
        """float32 `[count, 3, 3]`: flip @ rotation @ zoom @ translation."""
        uniform, sub = transforms.uniform, transforms.sub_seed
        matrices = []
        if self.flip:
            flips = uniform(sub(seed, 0), [count], 0.0, 1.0) <= 0.5
            matrices.append(transforms.flip_matrix(flips, width))
        if self.rotation:
            degrees = uniform(sub(seed, 1), [count], -self.rotation * 360, self.rotation * 360)
            matrices.append(transforms.rotation_matrix(degrees, height, width))
        if self.zoom:
            zoom = uniform(sub(seed, 2), [count], 1.0 - self.zoom, 1.0 + self.zoom)
            matrices.append(transforms.zoom_matrix(zoom, zoom, height, width))
        if self.translation:
            shift_y = uniform(sub(seed, 3), [count], -self.translation, self.translation)
            shift_x = uniform(sub(seed, 4), [count], -self.translation, self.translation)
            shift_x, shift_y = shift_x * width, shift_y * height
            if self.whole_pixels:  # an exact copy, no blur
                shift_x, shift_y = tf.round(shift_x), tf.round(shift_y)
            matrices.append(transforms.translation_matrix(shift_x, shift_y))
        if not matrices:
            return tf.eye(3, batch_shape=[count])
        return transforms.compose(matrices)

    def __call__(self, inputs: dict, seed: tf.Tensor) -> dict:
        images = inputs["images"]
        matrix = self.matrix(seed, tf.shape(images)[0], int(images.shape[1]),
                             int(images.shape[2]))
        if self.whole_pixels:  # copied, not sampled
            return transforms.shift_batch(inputs, matrix, fill_mode=self.fill_mode)
        return transforms.warp_batch(inputs, matrix, fill_mode=self.fill_mode)


@dataclasses.dataclass(frozen=True)
class FlipAndJitter:
    """Horizontal flip, brightness and contrast: the per-image part of "standard".

    Works on one example dict (run before batching, where a flip costs nothing more
    than a copy) or on a batch dict.

    Args:
        brightness: +- shift of brightness as a fraction of 255.
        contrast: +- change of contrast (factor 1 - contrast .. 1 + contrast).

    Example:

    >>> example = {"images": tf.fill([4, 6, 3], 100.0)}
    >>> out = FlipAndJitter()(example, tf.constant([0, 1]))
    >>> tuple(out["images"].shape)
    (4, 6, 3)
    """

    brightness: float = 0.1
    contrast: float = 0.2

    def __call__(self, inputs: dict, seed: tf.Tensor) -> dict:
        images = inputs["images"]
        if images.shape.rank == 4:
            draws = tf.random.stateless_uniform(tf.stack([tf.shape(images)[0], 3]), seed=seed)
            inputs = transforms.flip_batch(inputs, draws[:, 0] <= 0.5)
        else:
            draws = tf.random.stateless_uniform([3], seed=seed)
            inputs = transforms.flip_example(inputs, draws[0] <= 0.5)
        return {**inputs, "images": transforms.jitter(tf.cast(inputs["images"], tf.float32),
                                                     draws[..., 1:], self.brightness,
                                                     self.contrast)}


# The seeded stages of the presets, also accepted as `augment` with other parameters.
_PRESET_STAGES = (Geometric, RandomResizedCrop, FlipAndJitter)
STANDARD_CROP = RandomResizedCrop(scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3))
STANDARD_FLIP_AND_JITTER = FlipAndJitter(brightness=0.1, contrast=0.2)
_PRESET_BATCH_TRANSFORMS = {
    "light": Geometric(rotation=0.0, zoom=0.0, translation=0.1),
    "geometric": Geometric(rotation=0.1, zoom=0.1, translation=0.1),
}


@dataclasses.dataclass(frozen=True)
class AugmentationPlan:
    """What the pipeline runs for an augmentation spec, stage by stage.

    Attributes:
        crop: a random resized crop; file sources fuse it into decoding, otherwise it
            runs on whole batches before `batch`. None for no crop.
        per_example: a function on one decoded example dict, run after decoding and
            before batching (augmentations that work image by image, e.g. the
            albumentations bridge); in a `seeded` plan it also takes the element's seed,
            `per_example(example, seed)`. None for none.
        example: a seeded function `(example, seed)` on one decoded example, run
            right after decoding (cheap per-image work such as flips). None for none.
        batch: a function on batch dicts (see `seeded`). None for none.
        seeded: True when `crop` and `batch` draw their random numbers only from the
            stateless seeds the pipeline passes (`batch(batch, seed)`, seed int64 `[2]`):
            such augmentation runs in parallel and still repeats exactly under a seed.
            False for Keras layers and callables (`batch(batch)`).
    """

    crop: RandomResizedCrop | None = None
    per_example: Callable[[dict], dict] | None = None
    example: Callable[[dict, tf.Tensor], dict] | None = None
    batch: Callable[..., dict] | None = None
    seeded: bool = False
    counters: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        """True when the plan does nothing."""
        return (self.crop is None and self.per_example is None and self.example is None
                and self.batch is None)

    def batch_function(self, task: Task, include_crop: bool
                       ) -> Callable[[dict, tf.Tensor], dict] | None:
        """The batch stage as `fn(batch, seed)`, or None when there is nothing to do.

        Args:
            task: the task of the batches (its hooks put masks and boxes in the shape
                the transforms expect, then clip boxes and mark filled mask pixels).
            include_crop: also crop the batch (when decoding did not).

        Example:

        >>> from visionkit.vocabulary import get_task
        >>> plan = plan_augmentation("standard", get_task("detection"))
        >>> finish = plan.batch_function(get_task("detection"), include_crop=False)
        >>> batch = {"images": tf.zeros([1, 8, 8, 3]), "bounding_boxes": {
        ...     "boxes": tf.constant([[[-3.0, 2.0, 5.0, 20.0]]]), "labels": tf.constant([[1]])}}
        >>> finish(batch, tf.constant([0, 0]))["bounding_boxes"]["boxes"].numpy().tolist()
        [[[0.0, 2.0, 5.0, 8.0]]]
        """
        transform = self.batch
        crop = self.crop if include_crop else None
        if not self.seeded:
            return None if transform is None else (lambda batch, seed: transform(batch))
        if self.empty:
            return None
        # Even with nothing left to do on the batch (the crop fused into decoding), the
        # task's hooks run: they clip moved boxes and pad those that left the image.
        # After a per-example stage (albumentations), the boxes were counted on the way in.
        dropped = counter_for(self.counters, _describe(self),
                              follow_up=self.per_example is not None)

        def apply(batch: dict, seed: tf.Tensor) -> dict:
            held = {key: value for key, value in batch.items() if key in _HELD_OUT_KEYS}
            inputs = {key: value for key, value in batch.items() if key not in _HELD_OUT_KEYS}
            inputs = task.prepare_augmented(inputs)
            inputs["images"] = tf.cast(inputs["images"], tf.float32)
            images = inputs["images"]
            if crop is not None:
                fractions = crop.fractions(transforms.sub_seed(seed, 100), tf.shape(images)[0],
                                           int(images.shape[1]), int(images.shape[2]))
                inputs = transforms.crop_batch(inputs, fractions)
            if transform is not None:
                inputs = transform(inputs, seed)
            return _counted(dropped, batch, task.finish_augmented(
                {**inputs, **held}, tuple(images.shape[1:3])))

        return apply


def preset_layers(name: str, seed: int | None = None,
                  bounding_box_format: str | None = None) -> list[keras.layers.Layer]:
    """Keras 3 layers doing the geometric transforms of a preset, one warp per layer.

    - "none": nothing.
    - "light": horizontal flip and translation (10%, nearest sampling: whole pixels;
      bilinear with `bounding_box_format`, since Keras moves boxes by the exact
      sub-pixel shift: whole-pixel images would leave them up to half a pixel off their
      objects).
    - "geometric": horizontal flip, rotation (+-10% of a turn), zoom (+-10%) and
      translation (10%).

    Borders are mirrored (`fill_mode="reflect"`), or black with `bounding_box_format`.

    visionkit's presets run these transforms as one composed warp in the input
    pipeline; the layers are for augmenting inside a model, e.g. as its first layers so
    that augmentation runs on the accelerator, and for comparison. "standard" has no
    Keras counterpart (Keras has no random resized crop).

    Each layer gets its own seed (`seed + position`) so that their random draws are not
    correlated; all compute in float32 whatever the global dtype policy. The warp they
    run (`ImageProjectiveTransformV3`) has no XLA kernel, so Keras compiles a model
    holding these layers without XLA: `compile(jit_compile=True)` warns and leaves
    `model.jit_compile` False.

    Args:
        name: "none", "light" or "geometric".
        seed: base seed of the layers; None for unseeded layers.
        bounding_box_format: the box format of the batches ("xyxy" for detection), so
            geometric layers move boxes with the images. Defaults to None (no boxes).

    Returns:
        A list of Keras layers (empty for "none").

    Raises:
        ValueError: for "standard" or an unknown preset name.

    Example:

    >>> [type(layer).__name__ for layer in preset_layers("light", seed=0)]
    ['RandomFlip', 'RandomTranslation']
    """
    def seed_of(position: int) -> int | None:
        return None if seed is None else int(seed) + position

    # Mirrored borders, as the presets (black where boxes would miss mirrored objects).
    common: dict = {"dtype": "float32", "fill_mode": "reflect"}
    if bounding_box_format is not None:
        common.update(bounding_box_format=bounding_box_format, fill_mode="constant")
    flip = {key: value for key, value in common.items() if key != "fill_mode"}
    if name == "none":
        return []
    if name == "light":
        # Nearest sampling of a shift is a shift by whole pixels, as the preset's; Keras
        # shifts boxes by the unrounded amount, so with boxes the pixels follow it.
        interpolation = "nearest" if bounding_box_format is None else "bilinear"
        return [
            keras.layers.RandomFlip("horizontal", seed=seed_of(0), **flip),
            keras.layers.RandomTranslation(0.1, 0.1, interpolation=interpolation,
                                           seed=seed_of(1), **common),
        ]
    if name == "geometric":
        return [
            keras.layers.RandomFlip("horizontal", seed=seed_of(0), **flip),
            keras.layers.RandomRotation(0.1, seed=seed_of(1), **common),
            keras.layers.RandomZoom(0.1, seed=seed_of(2), **common),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed_of(3), **common),
        ]
    if name == "standard":
        raise ValueError("The 'standard' preset is a random resized crop fused into decoding, "
                         "which no Keras layer does; preset_layers offers 'light' and "
                         "'geometric'.")
    raise ValueError(f"Unknown augmentation preset {name!r}; expected one of {PRESETS}, a list "
                     "of Keras augmentation layers, or a callable.")


def check_augment(augment: Any, task: Task | str | None = None) -> Any:
    """Validates an augmentation spec without building anything; returns it normalized.

    None becomes "none"; a single layer is accepted as is. An albumentations Compose is
    checked for `task` when given (detection needs its `bbox_params`; see
    `visionkit.data.albumentations_bridge.check_compose`), and so are Keras layers (box
    format, and fills that would mislabel: see `build_augmenter`), so that `Data` and
    `with_augmentation` refuse them before any pipeline is built. A preset's own stage
    with other parameters (`Geometric`, `RandomResizedCrop`, `FlipAndJitter`) runs, seeded,
    where the presets run it.

    Raises:
        ValueError: for an unknown preset name, or a Compose, Keras layer or `Geometric`
            that does not fit `task` (for boxes, a `Geometric` must fill with
            `fill_mode="constant"`).
        TypeError: for a list item that is not a Keras layer (naming the item and its
            position), or a spec of another type.
    """
    if augment is None:
        return "none"
    if isinstance(augment, str):
        if augment not in PRESETS:
            preset_layers(augment)  # raises the unknown-preset error
        return augment
    if is_albumentations(augment) or (isinstance(augment, list)
                                      and any(is_albumentations(item) for item in augment)):
        return check_compose(augment, task)  # per image, see visionkit.data.albumentations_bridge
    if isinstance(augment, _PRESET_STAGES):
        _check_geometric_fill(augment, task)
        return augment
    if isinstance(augment, type):
        raise TypeError(f"Expected augment as a layer instance or a function; received the "
                        f"class {augment.__name__}. Instantiate it, e.g. {augment.__name__}(...).")
    if isinstance(augment, keras.layers.Layer):
        _check_layers([augment], task)
        return augment
    if callable(augment):
        return augment
    if isinstance(augment, Sequence):
        for position, item in enumerate(augment):
            if not isinstance(item, keras.layers.Layer):
                raise TypeError(
                    "Expected augment as a list of Keras layers; item "
                    f"{position} is {item!r} of type {type(item).__name__}. Use a preset name "
                    f"{PRESETS} on its own, or keras.layers.Random* layers in the list.")
        _check_layers(augment, task)
        return augment
    raise TypeError(f"Expected augment as a preset name {PRESETS}, a list of Keras layers or "
                    f"a callable; received {augment!r} of type {type(augment).__name__}.")


def build_augmenter(augment: Any, task: Task, seed: int | None = None,
                    counters: dict | None = None) -> Callable[[dict], dict] | None:
    """Turns Keras layers or a callable into a function on batch dicts (or None for none).

    The batch stage `plan_augmentation` gives Keras layers and callables. Keras layers
    are built anew on every call, so each pipeline starts from the same seeded random
    state. Presets and albumentations run in the stages `plan_augmentation` lays out
    (with the seeds the pipeline hands them), not through this function.

    Args:
        augment: a Keras layer, a sequence of Keras layers, or a callable that takes and
            returns a batch dict (it sees every key, labels included, and is responsible
            for them); "none" or an empty list for nothing.
        task: the task whose batches are augmented.
        seed: seed of Keras layers.
        counters: the data set's box-drop counters (`visionkit.data.box_drops.
            counter_for`), or None for a counter of this function's own.

    Returns:
        A function from batch dict to batch dict, or None when there is nothing to do.

    Raises:
        ValueError, TypeError: as `check_augment`; TypeError for a preset name other
            than "none" or an albumentations Compose (use `plan_augmentation`, or
            `Data.with_augmentation`); ValueError for a layer whose
            `bounding_box_format` is not the task's ("xyxy" for detection) or, for
            boxes, whose `fill_mode` is "reflect" (Keras's default) or "wrap" (copies
            of objects without boxes), and, for segmentation, for a layer filling with a
            constant `fill_value` other than 0 (Keras would write it into the masks as
            a class id).

    Example:

    >>> from visionkit.vocabulary import get_task
    >>> augmenter = build_augmenter([keras.layers.RandomFlip("horizontal", seed=0)],
    ...                             get_task("classification"))
    >>> batch = {"images": tf.fill([2, 8, 8, 3], 100.0), "labels": tf.constant([0, 1])}
    >>> augmenter(batch)["labels"].numpy().tolist()
    [0, 1]
    """
    augment = check_augment(augment)
    if augment == "none":
        return None
    if isinstance(augment, (str, *_PRESET_STAGES)) or is_albumentations(augment):
        raise TypeError(f"build_augmenter takes Keras layers or a callable; received "
                        f"{augment!r}, which runs in the stages of plan_augmentation "
                        "(or Data.with_augmentation).")
    if isinstance(augment, keras.layers.Layer):
        layers = [augment]
    elif callable(augment):
        return augment
    else:
        layers = list(augment)
    if not layers:
        return None
    _check_layers(layers, task)
    dropped = counter_for(counters, "Keras layers " + ", ".join(type(layer).__name__
                                                                for layer in layers))

    def apply(batch: dict) -> dict:
        held = {key: value for key, value in batch.items() if key in _HELD_OUT_KEYS}
        inputs = {key: value for key, value in batch.items() if key not in _HELD_OUT_KEYS}
        inputs = task.prepare_augmented(inputs)
        if set(inputs) == {"images"}:
            images = inputs["images"]
            for layer in layers:
                images = layer(images, training=True)
            inputs = {"images": images}
        else:
            for layer in layers:
                inputs = layer(inputs, training=True)
        inputs["images"] = tf.cast(inputs["images"], tf.float32)
        return _counted(dropped, batch, task.finish_augmented(
            {**inputs, **held}, tuple(inputs["images"].shape[1:3])))

    return apply


def _check_geometric_fill(stage: Any, task: Task | str | None) -> None:
    """Fails for a `Geometric` that would mirror objects without boxes into the images."""
    if isinstance(stage, Geometric) and stage.fill_mode != "constant" and task is not None \
            and get_task(task).bounding_box_format is not None:
        raise ValueError(
            f"Expected Geometric(fill_mode='constant') for boxes; received {stage!r}: a "
            f"{stage.fill_mode!r} border brings copies of objects in from outside the image "
            "with no box. The 'light' and 'geometric' presets fill detection images with "
            "black; pass fill_mode='constant' to do the same.")


def _check_layers(layers: Sequence[keras.layers.Layer], task: Task | str | None) -> None:
    """Fails for Keras layers that would move or fill `task`'s targets wrongly."""
    if task is None:
        return
    task = get_task(task)
    _check_box_formats(layers, task)
    _check_fills(layers, task)


def _check_box_formats(layers: Sequence[keras.layers.Layer], task: Task) -> None:
    """Fails for a Keras layer told another box format than the task's boxes (a layer
    with `bounding_box_format="xywh"` would move visionkit's xyxy boxes wrongly)."""
    expected = task.bounding_box_format
    for position, layer in enumerate(layers):
        given = getattr(layer, "bounding_box_format", None)
        if expected is not None and given is not None and given != expected:
            raise ValueError(
                f"Keras augmentation layer {position} ({type(layer).__name__}) has "
                f"bounding_box_format={given!r}, but {task.name} boxes are {expected!r} "
                f"(pixels): create it with bounding_box_format={expected!r}.")
        if expected is not None and isinstance(layer, keras.layers.RandomCrop) and \
                not _keras_random_crop_moves_boxes_right():
            raise ValueError(
                f"Keras augmentation layer {position} (RandomCrop): this Keras version "
                f"({keras.__version__}) shifts boxes by the crop's vertical offset along x "
                "and its horizontal offset along y (keras-team/keras#23518), so the boxes "
                "would no longer match the objects. Crop with the 'standard' preset or an "
                "albumentations Compose (A.RandomCrop with bbox_params) instead.")


# Keras layers with a `fill_value` that leave segmentation masks as they are.
_MASKS_UNTOUCHED = ("RandomErasing",)
# Fill modes that bring copies of the image's own content in from outside it.
_COPYING_FILL_MODES = ("reflect", "wrap")


def _check_fills(layers: Sequence[keras.layers.Layer], task: Task) -> None:
    """Fails for a Keras layer whose fill would mislabel what it brings into the image.

    - Boxes: "reflect" (Keras's default) and "wrap" bring mirrored or wrapped copies of
      objects in from outside the image, with no box (a detector learns them as
      background); visionkit's presets fill detection images with black instead.
    - Masks: Keras warps `segmentation_masks` with the layer's own fill, so a constant
      `fill_value` lands in the masks too. visionkit hands masks to the layers with
      class ids shifted by one, so a fill of 0 becomes 255 (ignore); any other value
      would become class id `fill_value - 1` (128, a grey border, becomes class 127; 1
      becomes class 0, background), silently.
    """
    for position, layer in enumerate(layers):
        fill_mode = getattr(layer, "fill_mode", None)
        name = f"Keras augmentation layer {position} ({type(layer).__name__})"
        if task.bounding_box_format is not None and fill_mode in _COPYING_FILL_MODES:
            raise ValueError(
                f"{name} has fill_mode={fill_mode!r}: it brings copies of objects in from "
                f"outside the image, which have no box, so the {task.name} model would "
                "learn them as background. Create it with fill_mode='constant' (black "
                "borders), as visionkit's presets do for boxes.")
        fill_value = getattr(layer, "fill_value", None)
        if task.target_key != SEGMENTATION_MASKS or fill_value is None or \
                float(fill_value) == 0.0 or (fill_mode or "constant") != "constant" or \
                type(layer).__name__ in _MASKS_UNTOUCHED:
            continue
        raise ValueError(
            f"{name} has fill_mode='constant' with fill_value={fill_value!r}: Keras fills "
            "the segmentation masks with that value too, which would label the pixels "
            f"brought in from outside the image as class {float(fill_value) - 1:g}. Use "
            "fill_value=0 (black pixels, ignored in the masks, 255) or fill_mode='reflect' "
            "(image and mask mirrored).")


@functools.cache
def _keras_random_crop_moves_boxes_right() -> bool:
    """Whether `keras.layers.RandomCrop` shifts xyxy boxes by (left, top): a 3x3 crop
    one pixel from the left must move the box [2, 0, 3, 1] to [1, 0, 2, 1]."""
    layer = keras.layers.RandomCrop(3, 3, bounding_box_format="xyxy")
    boxes = {"boxes": np.array([[[2.0, 0.0, 3.0, 1.0]]], np.float32),
             "labels": np.array([[1]], np.int32)}
    try:
        moved = layer.transform_bounding_boxes(boxes, (0, 1), training=True)["boxes"]
    except Exception:  # noqa: BLE001 - another transformation layout: not verified
        return False
    return bool(np.allclose(np.asarray(moved), [[[1.0, 0.0, 2.0, 1.0]]]))


def _counted(counter: Any, before: dict, after: dict) -> dict:
    """`after`, with the boxes augmentation dropped between `before` and it counted."""
    if BOUNDING_BOXES not in before or BOUNDING_BOXES not in after:
        return after
    targets = dict(after[BOUNDING_BOXES])
    images = before.get(IMAGES)
    image_size = tf.shape(images)[-3:-1] if images is not None else None
    targets[LABELS] = track_dropped_boxes(counter, before[BOUNDING_BOXES][LABELS],
                                          targets[LABELS], before[BOUNDING_BOXES]["boxes"],
                                          image_size)
    return {**after, BOUNDING_BOXES: targets}


def _describe(plan: AugmentationPlan) -> str:
    """How warnings name a plan's augmentation."""
    parts = [type(stage).__name__ for stage in (plan.crop, plan.batch, plan.example)
             if stage is not None]
    return "preset " + " + ".join(parts) if plan.seeded else "augmentation"


def plan_augmentation(augment: Any, task: Task, seed: int | None = None,
                      counters: dict | None = None) -> AugmentationPlan:
    """The stages `Data` runs for an augmentation spec (see `AugmentationPlan`).

    Args:
        augment: a preset name, an albumentations Compose, a preset's stage with its
            own parameters (`Geometric`, `RandomResizedCrop`, `FlipAndJitter`), or what
            `build_augmenter` takes.
        task: the task whose examples are augmented.
        seed: seed of Keras layers (presets get their seeds from the pipeline).
        counters: where the plan's box-drop counters live (`Data` keeps one registry
            per data set, so that its pipelines warn once); None for new ones.

    Returns:
        An `AugmentationPlan`.

    Raises:
        ValueError, TypeError: as `check_augment`.

    Example:

    >>> from visionkit.vocabulary import get_task
    >>> plan = plan_augmentation("standard", get_task("classification"))
    >>> plan.crop.scale, plan.seeded
    ((0.35, 1.0), True)
    """
    augment = check_augment(augment, task)
    if isinstance(augment, Geometric):  # a preset's stages, with other parameters
        return AugmentationPlan(batch=augment, seeded=True, counters=counters)
    if isinstance(augment, RandomResizedCrop):
        return AugmentationPlan(crop=augment, seeded=True, counters=counters)
    if isinstance(augment, FlipAndJitter):
        return AugmentationPlan(example=augment, seeded=True, counters=counters)
    if is_albumentations(augment):
        from visionkit.data.albumentations_bridge import albumentations_augmenter

        # Image by image, after decoding, with each element's seed: parallel and
        # repeatable.
        return AugmentationPlan(per_example=albumentations_augmenter(augment, task, counters),
                                seeded=True, counters=counters)
    if isinstance(augment, str):
        if augment == "none":
            return AugmentationPlan()
        if augment == "standard":
            return AugmentationPlan(crop=STANDARD_CROP, example=STANDARD_FLIP_AND_JITTER,
                                    seeded=True, counters=counters)
        preset = _PRESET_BATCH_TRANSFORMS[augment]
        if task.bounding_box_format is not None:
            # A mirrored border would show objects that have no box: fill instead.
            preset = dataclasses.replace(preset, fill_mode="constant")
        return AugmentationPlan(batch=preset, seeded=True, counters=counters)
    return AugmentationPlan(batch=build_augmenter(augment, task, seed, counters),
                            seeded=False)
