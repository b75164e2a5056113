"""The albumentations bridge: an `albumentations.Compose` applied image by image in tf.data.

albumentations is visionkit's one deliberate CPU path (DESIGN.md, principle 4): its
transforms are NumPy / OpenCV code, so the pipeline calls them per image through
`tf.numpy_function`, in parallel (`num_parallel_calls=AUTOTUNE`), after decoding and
before batching. Use it for transforms Keras lacks; visionkit's presets and Keras layers
stay in the graph (and on the accelerator when they are part of the model).

What goes in and comes out, per example:

- `images` go in as uint8 `[H, W, C]` (albumentations' native type; float pixels 0..255
  are rounded) and come back float32 0..255.
- `segmentation_masks` go in as `mask=` (uint8 class ids, 255 = ignore) and come back
  int32. albumentations warps masks with nearest neighbour, so no new class ids appear
  (a transform given another `mask_interpolation` is refused);
  pixels a warp brings in from outside the image get the transform's `fill_mask`
  (albumentations' default 0, i.e. class 0; pass `fill_mask=255` to ignore them).
- `bounding_boxes` go in as `bboxes=` in "pascal_voc" format (xyxy pixels, visionkit's
  own convention) with their class ids in every `label_fields` entry of the Compose's
  `bbox_params`, plus an extra column holding each box's row, which is how the classes
  of the boxes albumentations keeps are found again. Boxes albumentations drops take
  their classes with them; the rest are clipped to the image, boxes narrower or lower
  than one pixel become padding, and the rows are padded with -1 to the fixed count.
  A Compose without `bbox_params` would leave boxes where they were while the image
  moves, so detection data requires `bbox_params=A.BboxParams(format="pascal_voc",
  label_fields=["labels"])` (an error says so; visionkit does not add it silently). A
  transform whose `border_mode` mirrors or wraps the image is refused for boxes: the
  copies of objects it brings in come boxed in pieces (more boxes than the image's rows
  hold) or not at all.
- Other keys (class `labels`, ...) pass through unchanged.

Every output has the input's size: a Compose whose transforms change the size must end
with a resize or crop back to it (e.g. `A.Resize(height, width)`), else building the
pipeline fails naming the transform that changed it. Static shapes are restored after
`tf.numpy_function`, so batching and models see fully defined shapes.

Randomness: each call gets its own seed (`Data` zips a seeded stream of numbers to the
examples, new numbers every epoch), which seeds one NumPy and one Python generator
shared by all transforms of the Compose for that image. Each worker thread uses its own
copy of the Compose, so parallel calls neither race for one random state nor depend on
which thread runs which image: with a seed, augmentation repeats exactly even though it
runs in parallel. The Compose's own `seed=` is not used: albumentations 2.0 gives every
transform of a seeded Compose the same seed, so e.g. `HorizontalFlip(p=0.5)` and
`VerticalFlip(p=0.5)` fire together on every image.

`tf.numpy_function` runs Python: pipelines using the bridge cannot be serialized to
tf.data service workers, and each image holds the GIL while albumentations' own Python
runs (OpenCV releases it while it computes).

Example:

>>> import albumentations as A
>>> import tensorflow as tf
>>> from visionkit.vocabulary import get_task
>>> augment = albumentations_augmenter(A.Compose([A.HorizontalFlip(p=1.0)]),
...                                    get_task("classification"))
>>> example = {"images": tf.reshape(tf.range(12, dtype=tf.float32), [2, 2, 3]),
...            "labels": tf.constant(1)}
>>> out = augment(example, tf.constant([0, 1], tf.int64))
>>> out["images"][0, :, 0].numpy().tolist(), int(out["labels"])
([3.0, 0.0], 1)
"""

from __future__ import annotations

import copy
import inspect
import random
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.albumentations_legacy import (
    removed_argument_hint,
    removed_transform_hint,
    translate_1x_arguments,
)
from visionkit.data.box_drops import DroppedBoxes, counter_for
from visionkit.data.boxes import MIN_BOX_SIDE, PAD_VALUE
from visionkit.vocabulary import Task, did_you_mean, get_task

__all__ = ["BOX_FORMAT", "albumentations_augmenter", "check_compose", "compose_from_entries",
           "compose_from_recipe", "is_albumentations", "recipe_to_dict"]

# The albumentations box format of visionkit's boxes: xyxy in pixels.
BOX_FORMAT = "pascal_voc"
# Mask values must fit albumentations' uint8 masks (class ids and 255 = ignore).
MAX_MASK_VALUE = 255

_MASK_KEY = "segmentation_masks"
_BOX_KEY = "bounding_boxes"
_BOX_HINT = (f'bbox_params=A.BboxParams(format="{BOX_FORMAT}", label_fields=["labels"])')
# Keys a recipe's albumentations section may hold.
_RECIPE_KEYS = ("albumentations", "bbox_params")
_SEED_MODULUS = 2**63


def is_albumentations(value: Any) -> bool:
    """Whether `value` is an albumentations transform or composition.

    Example:

    >>> import albumentations as A
    >>> is_albumentations(A.Compose([])), is_albumentations("light")
    (True, False)
    """
    return type(value).__module__.split(".")[0] == "albumentations"


def check_compose(compose: Any, task: str | Task | None = None) -> Any:
    """Validates an albumentations composition for `task`; returns it unchanged.

    Args:
        compose: an `albumentations.Compose` (or another `BaseCompose`, e.g. `OneOf`).
        task: the task of the data it will augment, or None to skip the task checks.

    Returns:
        `compose`.

    Raises:
        TypeError: for a single transform (it must be wrapped in `A.Compose([...])`) or
            a value that is not an albumentations composition.
        ValueError: for detection data and a Compose without `bbox_params` in the
            "pascal_voc" format (the message shows what to add) or with a transform
            whose `border_mode` mirrors or wraps the image (albumentations 1.x's default
            for rotations: copies of objects boxed in pieces, or not at all), or for
            segmentation
            data and a transform whose `mask_interpolation` is not nearest neighbour
            (it would blend class ids into others).

    Example:

    >>> import albumentations as A
    >>> check_compose(A.Compose([A.HorizontalFlip()]), "detection")
    Traceback (most recent call last):
    ...
    ValueError: Detection data needs the Compose to move the boxes with the images: ...
    """
    import albumentations as A

    if isinstance(compose, A.BasicTransform):
        name = type(compose).__name__
        raise TypeError(f"Expected augment as an albumentations Compose; received the single "
                        f"transform {name}. Wrap it: A.Compose([A.{name}(...)]).")
    if isinstance(compose, list):
        raise TypeError("Expected augment as an albumentations Compose; received a list of "
                        "transforms. Wrap them: A.Compose([...]).")
    if not isinstance(compose, A.BaseCompose):
        raise TypeError(f"Expected an albumentations Compose; received {compose!r} of type "
                        f"{type(compose).__name__}.")
    if task is not None and get_task(task).bounding_box_format is not None:
        processor = getattr(compose, "processors", {}).get("bboxes")
        if processor is None:
            raise ValueError(
                "Detection data needs the Compose to move the boxes with the images: "
                f"create it with A.Compose([...], {_BOX_HINT}). Without bbox_params "
                "albumentations leaves boxes where they were.")
        if processor.params.format != BOX_FORMAT:
            raise ValueError(
                f"Expected the Compose's bbox_params in format {BOX_FORMAT!r} (xyxy pixels, "
                f"visionkit's boxes); received format={processor.params.format!r}. Use "
                f"{_BOX_HINT}.")
        copying = [f"{type(t).__name__}(border_mode={_COPYING_BORDER_MODES[t.border_mode]})"
                   for t in _all_transforms(compose)
                   if getattr(t, "border_mode", None) in _COPYING_BORDER_MODES]
        if copying:
            raise ValueError(
                f"Expected borders filled with a constant for boxes; received "
                f"{', '.join(copying)}, which brings copies of objects in from outside "
                "the image: albumentations boxes a mirrored copy as extra pieces (one object "
                "became 3 boxes after a rotation), more than an image's box rows hold, so "
                "training stops at such an image, and a wrapped copy gets no box. Leave "
                "border_mode at its default, cv2.BORDER_CONSTANT (0).")
    if task is not None and get_task(task).target_key == _MASK_KEY:
        blurring = [f"{type(t).__name__}(mask_interpolation={t.mask_interpolation})"
                    for t in _all_transforms(compose)
                    if getattr(t, "mask_interpolation", None) not in _EXACT_MASK_INTERPOLATIONS]
        if blurring:
            raise ValueError(
                f"Expected masks warped with nearest neighbour (class ids are labels, not "
                f"intensities); received {', '.join(blurring)}, which blends the ids of "
                "neighbouring classes into ids of others (between 0 and 2 comes 1) and "
                "the ignore value 255 into class ids. Leave mask_interpolation at its "
                "default, cv2.INTER_NEAREST (0).")
    return compose


# OpenCV border modes that bring copies of the image's content in from outside it
# (cv2.BORDER_REPLICATE, 1, repeats the edge pixel only).
_COPYING_BORDER_MODES = {2: "cv2.BORDER_REFLECT", 3: "cv2.BORDER_WRAP",
                         4: "cv2.BORDER_REFLECT_101"}

# cv2.INTER_NEAREST and cv2.INTER_NEAREST_EXACT: the mask interpolations that keep ids
# (None: a transform that does not warp masks).
_EXACT_MASK_INTERPOLATIONS = (None, 0, 6)


def _all_transforms(compose: Any) -> list:
    """The transforms of a composition, nested ones (OneOf, Sequential, ...) included."""
    found = []
    for transform in getattr(compose, "transforms", []):
        found += _all_transforms(transform) if hasattr(transform, "transforms") else \
            [transform]
    return found


def albumentations_augmenter(compose: Any, task: str | Task, counters: dict | None = None
                             ) -> Callable[[dict, tf.Tensor | None], dict]:
    """The per-example augmentation function of an albumentations Compose.

    The function takes one example dict (`images` float32 `[H, W, C]` 0..255 and the
    task's targets) and an int64 seed (any shape, e.g. `[2]`; None draws a random one),
    and returns the augmented example with the same keys, dtypes and static shapes. It
    is graph code (for `Dataset.map`) around one `tf.numpy_function` call.

    Args:
        compose: an `albumentations.Compose` (see `check_compose`).
        task: the task of the examples (detection needs `bbox_params`).
        counters: the data set's box-drop counters (`visionkit.data.box_drops.
            counter_for`), or None for a counter of this function's own.

    Returns:
        `augment(example, seed=None) -> example`.

    Raises:
        TypeError, ValueError: as `check_compose`. When the function is traced on
            examples of a known size, ValueError if the Compose changes that size
            (naming the transform that does).

    Example:

    >>> import albumentations as A
    >>> augment = albumentations_augmenter(A.Compose([A.VerticalFlip(p=1.0)]),
    ...                                    "segmentation")
    >>> example = {"images": tf.zeros([2, 3, 3]),
    ...            "segmentation_masks": tf.constant([[1, 1, 1], [0, 0, 0]])}
    >>> augment(example, tf.constant(7, tf.int64))["segmentation_masks"].numpy().tolist()
    [[0, 0, 0], [1, 1, 1]]
    """
    task = get_task(task)
    check_compose(compose, task)
    copies = _PerThread(compose)
    label_fields = _label_fields(compose)
    dropped = counter_for(counters, "albumentations Compose")
    checked_sizes: set[tuple[int, ...]] = set()

    def augment(example: dict, seed: tf.Tensor | None = None) -> dict:
        images = example["images"]
        masks = example.get(_MASK_KEY)
        boxes = example.get(_BOX_KEY)
        static = tuple(images.shape)
        if None not in static and static not in checked_sizes:
            _check_output_size(compose, static, with_mask=masks is not None)
            checked_sizes.add(static)
        if seed is None:
            seed = tf.random.uniform([2], 0, tf.int64.max, dtype=tf.int64)
        # uint8 in and out, converted in the graph (outside the GIL).
        pixels = images if images.dtype == tf.uint8 else \
            tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
        inputs = [tf.reshape(tf.cast(seed, tf.int64), [-1]), pixels]
        types = [tf.uint8]
        if masks is not None:
            inputs.append(masks)
            types.append(tf.int32)
        if boxes is not None:
            inputs += [boxes["boxes"], boxes["labels"]]
            types += [tf.float32, tf.int32]
        has_mask, has_boxes = masks is not None, boxes is not None

        def run(seed_values, image, *targets):
            return _apply(copies.get(), seed_values, image, targets, has_mask, has_boxes,
                          label_fields, dropped)

        outputs = tf.numpy_function(run, inputs, types, stateful=True,
                                    name="albumentations")
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        result = dict(example)
        result["images"] = tf.cast(tf.ensure_shape(outputs[0], images.shape), tf.float32)
        position = 1
        if has_mask:
            result[_MASK_KEY] = tf.ensure_shape(outputs[position], masks.shape)
            position += 1
        if has_boxes:
            result[_BOX_KEY] = {
                **boxes,
                "boxes": tf.ensure_shape(outputs[position], boxes["boxes"].shape),
                "labels": tf.ensure_shape(outputs[position + 1], boxes["labels"].shape)}
        return result

    return augment


def recipe_to_dict(section: Mapping[str, Any], task: str | Task | None = None,
                   where: str = "data.augment") -> dict[str, Any]:
    """A recipe's albumentations section in albumentations' own serialization format.

    The section is `{"albumentations": ..., "bbox_params": {...}}`, where
    `albumentations` is either

    - albumentations' serialization (what `A.to_dict(compose)` returns, or its
      `"transform"` part): `{"__version__": ..., "transform": {"__class_fullname__":
      "Compose", "transforms": [...], ...}}`, used as written (a transform written
      without `p` gets its own default `p`, as below); or
    - the shorthand list of entries `{"transform": Name, **arguments}` (Name may be
      written dotted, as albumentations 1.x's `__class_fullname__`; compositions
      such as `OneOf` take their children as a `transforms` list of entries), converted
      here: each entry becomes `{"__class_fullname__": Name, **arguments}` and an entry
      without `p` gets its transform's own default `p` (albumentations' reader would
      otherwise take 0.5, e.g. for `Resize`, whose default is 1.0).

    For a task with boxes, a Compose without `bbox_params` gets them in the
    "pascal_voc" format with `label_fields=["labels"]`, updated with the section's
    `bbox_params` (e.g. `{"min_visibility": 0.3}`). No `seed` is set: `Data` seeds
    every image (see the module docstring).

    Args:
        section: the recipe's `augment` mapping.
        task: the task of the data, or None.
        where: how messages name the section. Defaults to "data.augment".

    Returns:
        A dict for `A.from_dict`.

    Raises:
        ValueError: for an unknown key, an entry without `transform`, an unknown
            transform name (naming the entry, with close matches), or `bbox_params` on
            data without boxes.

    Example:

    >>> serialized = recipe_to_dict({"albumentations": [{"transform": "Resize",
    ...                                                  "height": 8, "width": 8}]})
    >>> serialized["transform"]["transforms"]
    [{'__class_fullname__': 'Resize', 'height': 8, 'width': 8, 'p': 1}]
    """
    import albumentations as A

    for key in section:
        if key not in _RECIPE_KEYS:
            hint = did_you_mean(key, _RECIPE_KEYS)
            raise ValueError(f"{where}: unknown key {key!r}.{hint} Expected a preset name, "
                             "a list of Keras layer entries, or a mapping with "
                             "'albumentations' (a list of transform entries, or "
                             "albumentations' own A.to_dict form) and optional "
                             "'bbox_params'.")
    if "albumentations" not in section:
        raise ValueError(f"{where}: a mapping needs 'albumentations', a list of entries "
                         "like {transform: HorizontalFlip, p: 0.5}.")
    given = section["albumentations"]
    here = f"{where}.albumentations"
    if isinstance(given, Mapping):
        serialized = copy.deepcopy(dict(given))
        if "transform" not in serialized and "__class_fullname__" in serialized:
            serialized = {"transform": serialized}
        if not isinstance(serialized.get("transform"), Mapping) or \
                "__class_fullname__" not in serialized["transform"]:
            raise ValueError(f"{here}: expected albumentations' serialization "
                             "({__version__: ..., transform: {__class_fullname__: Compose, "
                             f"transforms: [...]}}, as A.to_dict writes it); received "
                             f"{given!r}.")
        _fill_default_p(serialized["transform"])
    elif isinstance(given, list):
        serialized = {"__version__": A.__version__, "transform": {
            "__class_fullname__": "Compose", "transforms": _entries_to_dict(given, here)}}
    else:
        raise ValueError(f"{here}: expected a list of entries like {{transform: "
                         f"HorizontalFlip, p: 0.5}}; received {given!r}.")
    translate_1x_arguments(serialized["transform"], here)
    bbox_params = section.get("bbox_params")
    if bbox_params is not None and not isinstance(bbox_params, Mapping):
        raise ValueError(f"{where}.bbox_params: expected a mapping of A.BboxParams "
                         f"arguments; received {bbox_params!r}.")
    compose = serialized["transform"]
    if task is not None and get_task(task).bounding_box_format is not None:
        if compose.get("bbox_params") is None or bbox_params:
            compose["bbox_params"] = {"format": BOX_FORMAT, "label_fields": ["labels"],
                                      **dict(compose.get("bbox_params") or {}),
                                      **dict(bbox_params or {})}
    elif bbox_params and task is not None:
        raise ValueError(f"{where}: bbox_params apply to detection data only; received "
                         f"{dict(bbox_params)!r} for task {get_task(task).name!r}.")
    return serialized


def compose_from_recipe(section: Mapping[str, Any], task: str | Task | None = None,
                        where: str = "data.augment") -> Any:
    """The `albumentations.Compose` of a recipe's section, read by `A.from_dict`.

    Args:
        section, task, where: as `recipe_to_dict`.

    Returns:
        An `albumentations.Compose`, checked for `task` (`check_compose`).

    Raises:
        ValueError: as `recipe_to_dict`; for arguments a transform rejects (naming the
            entry); for a Compose that does not fit `task`.

    Example:

    >>> compose = compose_from_recipe({"albumentations": [{"transform": "HorizontalFlip"}]})
    >>> [(type(t).__name__, t.p) for t in compose.transforms]
    [('HorizontalFlip', 0.5)]
    """
    serialized = recipe_to_dict(section, task, where)
    compose = _from_dict(serialized["transform"], f"{where}.albumentations")
    return check_compose(compose, task)


def compose_from_entries(entries: Sequence[Mapping[str, Any]], task: str | Task | None = None,
                         bbox_params: Mapping[str, Any] | None = None,
                         where: str = "data.augment.albumentations") -> Any:
    """`compose_from_recipe` for a list of shorthand entries (and optional `bbox_params`).

    Example:

    >>> compose = compose_from_entries([{"transform": "HorizontalFlip", "p": 0.5}])
    >>> [(type(t).__name__, t.p) for t in compose.transforms]
    [('HorizontalFlip', 0.5)]
    >>> compose_from_entries([{"transform": "HorizontalFlp"}])
    Traceback (most recent call last):
    ...
    ValueError: data.augment.albumentations[0]: 'HorizontalFlp' is not an albumentations transform. Did you mean 'HorizontalFlip'? ...
    """
    section = {"albumentations": list(entries), "bbox_params": bbox_params}
    return compose_from_recipe(section, task, where.removesuffix(".albumentations"))


def check_recipe_augment(value: Mapping[str, Any]) -> None:
    """Validates a recipe's `augment: {albumentations: ..., bbox_params: {...}}` mapping
    by building it (see `compose_from_recipe`; the task's checks run when the data is
    built).

    Raises:
        ValueError: naming the unknown key or the bad entry.
    """
    compose_from_recipe(value)


# -- internals -----------------------------------------------------------------------------

class _PerThread:
    """One deep copy of a Compose per thread (albumentations keeps per-call state).

    Copies are keyed by `threading.get_ident()`, not kept in a `threading.local`:
    TensorFlow's threads enter Python afresh for every `tf.numpy_function` call, which
    empties a `threading.local` each time (measured: 2,000 calls on 2 threads, 2,000
    fresh locals), so a deep copy per call would cost more than the augmentation.
    """

    def __init__(self, compose: Any) -> None:
        self._compose = compose
        self._copies: dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self) -> Any:
        thread = threading.get_ident()
        copy_of_thread = self._copies.get(thread)
        if copy_of_thread is None:
            with self._lock:
                copy_of_thread = self._copies.setdefault(thread, copy.deepcopy(self._compose))
        return copy_of_thread


def _label_fields(compose: Any) -> tuple[str, ...]:
    processor = getattr(compose, "processors", {}).get("bboxes")
    return tuple(processor.params.label_fields or ()) if processor is not None else ()


def _transform_names() -> list[str]:
    import albumentations as A

    return sorted(name for name in dir(A) if isinstance(getattr(A, name), type)
                  and issubclass(getattr(A, name), (A.BasicTransform, A.BaseCompose)))


def _entries_to_dict(entries: Sequence[Any], where: str) -> list[dict[str, Any]]:
    """Shorthand entries -> albumentations' serialized transforms (see `recipe_to_dict`)."""
    import albumentations as A

    serialized = []
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or "transform" not in entry:
            raise ValueError(f"{here}: expected a mapping with a 'transform' key naming an "
                             f"albumentations transform, e.g. {{transform: HorizontalFlip, "
                             f"p: 0.5}}; received {entry!r}.")
        arguments = dict(entry)
        name = str(arguments.pop("transform"))
        if name.startswith("albumentations."):  # a 1.x `__class_fullname__`, copied
            name = name.rpartition(".")[2]
        transform_class = getattr(A, name, None)
        if not (isinstance(transform_class, type)
                and issubclass(transform_class, (A.BasicTransform, A.BaseCompose))):
            removed = removed_transform_hint(name)
            if removed:
                raise ValueError(f"{here}:{removed}")
            hint = did_you_mean(name, _transform_names(), n=3)
            raise ValueError(f"{here}: {name!r} is not an albumentations transform.{hint} "
                             "Names are the class names of the albumentations package "
                             "(albumentations.HorizontalFlip, ...).")
        if issubclass(transform_class, A.BaseCompose):
            children = arguments.pop("transforms", None)
            if not isinstance(children, list):
                raise ValueError(f"{here}: {name} needs 'transforms', a list of entries.")
            arguments["transforms"] = _entries_to_dict(children, f"{here}.transforms")
        _default_p(transform_class, arguments)
        serialized.append({"__class_fullname__": name, **arguments})
    return serialized


def _default_p(transform_class: type, arguments: dict[str, Any]) -> None:
    """Sets `p` to the transform's own default when missing (the reader takes 0.5)."""
    if "p" not in arguments:
        default = inspect.signature(transform_class).parameters.get("p")
        if default is not None and default.default is not inspect.Parameter.empty:
            arguments["p"] = default.default


def _fill_default_p(transform: Any) -> None:
    """`_default_p` through a serialized transform and its children, in place (a
    hand-written `A.to_dict` form may leave `p` out; `A.to_dict` itself always writes it)."""
    import albumentations as A

    if not isinstance(transform, dict):
        return
    name = str(transform.get("__class_fullname__", "")).rpartition(".")[2]
    transform_class = getattr(A, name, None)
    if isinstance(transform_class, type) and \
            issubclass(transform_class, (A.BasicTransform, A.BaseCompose)):
        _default_p(transform_class, transform)
    children = transform.get("transforms")
    for child in children if isinstance(children, list) else []:
        _fill_default_p(child)


def _from_dict(transform: Mapping[str, Any], where: str) -> Any:
    """`A.from_dict` of one serialized transform (and its children); an argument the
    transform rejects or ignores fails naming the entry."""
    import albumentations as A

    name = transform.get("__class_fullname__")
    try:
        with warnings.catch_warnings():  # unknown arguments: checked just below
            warnings.simplefilter("ignore", UserWarning)
            built = A.from_dict({"transform": dict(transform)})
    except Exception as error:  # albumentations validates arguments with pydantic
        children = transform.get("transforms")
        for index, child in enumerate(children if isinstance(children, list) else []):
            _from_dict(child, _child_where(transform, where, index))  # names a bad child
        if str(name).rpartition(".")[2] not in _transform_names():
            removed = removed_transform_hint(str(name))
            if removed:
                raise ValueError(f"{where}:{removed}") from None
            hint = did_you_mean(str(name).rpartition(".")[2], _transform_names(), n=3)
            raise ValueError(f"{where}: {name!r} is not an albumentations transform.{hint}"
                             ) from None
        arguments = {k: v for k, v in transform.items() if k != "__class_fullname__"}
        raise ValueError(f"{where}: cannot build {name} with {arguments}: {error}") from None
    _check_arguments(built, transform, where)
    return built


def _check_arguments(built: Any, transform: Mapping[str, Any], where: str) -> None:
    """Fails for an argument a built transform (or one of its children) ignored."""
    invalid = getattr(built, "invalid_args", None)
    if invalid:
        raise ValueError(f"{where}: {type(built).__name__} takes no argument(s) "
                         f"{', '.join(invalid)}."
                         f"{removed_argument_hint(type(built).__name__, list(invalid))}")
    children = transform.get("transforms")
    if isinstance(children, list):
        for index, (child, serialized) in enumerate(zip(built.transforms, children)):
            _check_arguments(child, serialized, _child_where(transform, where, index))


def _child_where(transform: Mapping[str, Any], where: str, index: int) -> str:
    """How messages name child `index`: the Compose's own list is the recipe's list."""
    if transform.get("__class_fullname__") == "Compose":
        return f"{where}[{index}]"
    return f"{where}.transforms[{index}]"


def _seeded(compose: Any, seed_values: np.ndarray) -> None:
    """Seeds one NumPy and one Python generator, shared by every transform of `compose`."""
    entropy = [int(value) % _SEED_MODULUS for value in np.asarray(seed_values).reshape(-1)]
    generator = np.random.default_rng(entropy or None)
    compose.set_random_state(generator, random.Random(int(generator.integers(_SEED_MODULUS))))


def _apply(compose: Any, seed_values: np.ndarray, image: np.ndarray, targets: tuple,
           has_mask: bool, has_boxes: bool, label_fields: tuple[str, ...],
           dropped: DroppedBoxes | None = None) -> list[np.ndarray]:
    """The NumPy side: one example through the Compose (see the module docstring)."""
    _seeded(compose, seed_values)
    height, width = image.shape[:2]
    data: dict[str, Any] = {"image": image}
    position = 0
    if has_mask:
        mask = np.asarray(targets[0])
        if mask.size and (mask.min() < 0 or mask.max() > MAX_MASK_VALUE):
            raise ValueError(f"Expected mask values 0..{MAX_MASK_VALUE} (class ids, 255 = "
                             f"ignore) for albumentations; received values {mask.min()}.."
                             f"{mask.max()}.")
        data["mask"] = mask.astype(np.uint8)
        position = 1
    if has_boxes:
        boxes = np.asarray(targets[position], np.float32)
        labels = np.asarray(targets[position + 1], np.int32)
        rows = np.nonzero(labels >= 0)[0]
        coordinates = np.clip(boxes[rows], 0, [width, height, width, height])
        kept = (coordinates[:, 2] > coordinates[:, 0]) & (coordinates[:, 3] > coordinates[:, 1])
        rows, coordinates = rows[kept], coordinates[kept]
        # The extra column carries each box's row through albumentations.
        data["bboxes"] = np.concatenate([coordinates, rows[:, None].astype(np.float32)], axis=1)
        for field in label_fields:
            data[field] = labels[rows]
    _empty_targets(compose, data)
    out = compose(**data)
    augmented = np.asarray(out["image"])
    if augmented.ndim == 2:
        augmented = augmented[..., None]
    if augmented.shape != image.shape:
        names = [type(t).__name__ for t in compose.transforms]
        raise ValueError(
            f"The albumentations Compose {names} returned an image of shape "
            f"{augmented.shape} for an input of shape {image.shape}. Every image must keep "
            f"the data's size and channels: end the Compose with A.Resize({height}, {width}) "
            f"(or a crop to {height}x{width}) after transforms that change the size.")
    if augmented.dtype != np.uint8:
        raise ValueError(
            f"The albumentations Compose returned {augmented.dtype} images; expected uint8 "
            "pixels. visionkit models rescale and normalize inside the graph, so leave "
            "Normalize / ToFloat out of the Compose.")
    result = [augmented]
    if has_mask:
        result.append(np.asarray(out["mask"]).reshape(height, width).astype(np.int32))
    if has_boxes:
        count = len(labels)
        moved = np.asarray(out["bboxes"], np.float32).reshape(-1, 5)
        rows = np.rint(moved[:, 4]).astype(np.int64)
        coordinates = np.clip(moved[:, :4], 0, [width, height, width, height])
        kept = ((coordinates[:, 2] - coordinates[:, 0]) >= MIN_BOX_SIDE) & \
            ((coordinates[:, 3] - coordinates[:, 1]) >= MIN_BOX_SIDE)
        rows, coordinates = rows[kept], coordinates[kept]
        if len(rows) > count:
            raise ValueError(f"The albumentations Compose returned {len(rows)} boxes for "
                             f"an image with room for {count}.")
        out_boxes = np.full((count, 4), PAD_VALUE, np.float32)
        out_labels = np.full((count,), PAD_VALUE, np.int32)
        out_boxes[:len(rows)] = coordinates
        out_labels[:len(rows)] = labels[rows]
        if dropped is not None:  # the kept labels in their rows: the dropped rows are -1
            in_place = np.full((count,), PAD_VALUE, np.int32)
            in_place[rows] = labels[rows]
            dropped.record(labels, in_place, boxes, (height, width))
        result += [out_boxes, out_labels]
    return result


def _empty_targets(compose: Any, data: dict[str, Any]) -> None:
    """Empty boxes / keypoints and label fields for the Compose's `bbox_params` /
    `keypoint_params` the data has no targets for (a detection Compose reused on
    classification data, keypoint_params visionkit does not feed): albumentations
    otherwise fails with "Your 'label_fields' are not valid"."""
    for target, processor in getattr(compose, "processors", {}).items():
        columns = 4 if target == "bboxes" else len(str(processor.params.format))
        data.setdefault(target, np.zeros((0, columns), np.float32))
        for field in processor.params.label_fields or ():
            data.setdefault(field, np.zeros((0,), np.int32))


def _check_output_size(compose: Any, shape: tuple[int, ...], with_mask: bool) -> None:
    """Dry run with every top-level transform applied: fails if the size changes.

    Transforms that cannot run on a plain image (e.g. crops that need boxes) end the dry
    run quietly; the per-image check in `_apply` still guards them.
    """
    height, width = int(shape[0]), int(shape[1])
    trial = copy.deepcopy(compose)
    _seeded(trial, np.array([0]))
    data: dict[str, Any] = {"image": np.full(shape, 128, np.uint8)}
    if with_mask:
        data["mask"] = np.zeros((height, width), np.uint8)
    size = (height, width)
    last_change = None
    for position, transform in enumerate(trial.transforms):
        try:
            data = transform(force_apply=True, **data)
        except Exception:  # noqa: BLE001 - see the docstring
            return
        new_size = tuple(int(v) for v in np.asarray(data["image"]).shape[:2])
        if new_size != size:
            last_change = (position, type(transform).__name__, size, new_size)
        size = new_size
    if size != (height, width) and last_change is not None:
        position, name, before, after = last_change
        raise ValueError(
            f"albumentations transform {position} ({name}) changes the image size from "
            f"{before[0]}x{before[1]} to {after[0]}x{after[1]}, and the Compose ends at "
            f"{size[0]}x{size[1]}, not the data's image size {height}x{width}. End the "
            f"Compose with A.Resize({height}, {width}) (or a crop to {height}x{width}): "
            "batches and the model need every image at the data's size.")
