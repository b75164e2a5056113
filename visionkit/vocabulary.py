"""The words every visionkit package shares: batch keys, mask and box conventions, tasks.

This module is the leaf of visionkit's layering: it imports no other visionkit package, and
`data`, `train`, `export` and `interpret` import it instead of each other. It holds

- the batch keys of the one batch vocabulary (Keras 3's own): `IMAGES`, `LABELS`,
  `SEGMENTATION_MASKS`, `BOUNDING_BOXES` (a dict of `BOXES` and `LABELS`);
- `IGNORE_INDEX` (255), the mask value left out of losses and metrics;
- `BOX_FORMAT` ("xyxy" in pixels) and `BOX_PADDING` (-1), the padding of unused box rows
  and their labels;
- the `Task` protocol and the task table: `register_task` (used by the concrete task
  objects in `visionkit.tasks`) and `get_task`, which the lower packages call to reach the
  task a `Data` or an export names.

Example:

>>> import visionkit  # registers the concrete tasks
>>> from visionkit.vocabulary import get_task, IGNORE_INDEX
>>> get_task("segmentation").target_key, IGNORE_INDEX
('segmentation_masks', 255)
"""

from __future__ import annotations

import difflib
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import keras
import numpy as np
import tensorflow as tf

from visionkit.keras_internals import producing_layer

__all__ = ["BOUNDING_BOXES", "BOXES", "BOX_FORMAT", "BOX_PADDING", "IGNORE_INDEX", "IMAGES",
           "LABELS", "Registry", "SEGMENTATION_MASKS", "TASKS", "Task", "UnknownNameError",
           "did_you_mean", "ends_in_probabilities", "get_task", "is_opaque", "output_activation",
           "probed_activation",
           "predict_dataset", "register_task", "tasks_with"]

# Batch keys.
IMAGES = "images"
LABELS = "labels"
SEGMENTATION_MASKS = "segmentation_masks"
BOUNDING_BOXES = "bounding_boxes"
BOXES = "boxes"

# Mask value of pixels left out of losses and metrics.
IGNORE_INDEX = 255
# Boxes: corners (x1, y1, x2, y2) in pixels; unused rows and their labels hold -1.
BOX_FORMAT = "xyxy"
BOX_PADDING = -1


def did_you_mean(name: Any, known: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """" Did you mean 'x'?" naming the closest of `known` to `name`, or "" when none is close.

    Every "unknown name" error of visionkit (models, backbones, tasks, recipe fields,
    transforms) ends its message with this.

    Args:
        name: the name a user gave.
        known: the valid names.
        n: how many close names to offer at most.
        cutoff: `difflib.get_close_matches`'s similarity cutoff (0..1).

    Example:

    >>> did_you_mean("segmentaton", ["classification", "segmentation"])
    " Did you mean 'segmentation'?"
    >>> did_you_mean("xyz", ["classification"])
    ''
    """
    close = difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


T = TypeVar("T")


class UnknownNameError(KeyError):
    """The `KeyError` of `registry[name]` for an unknown name, with `lookup`'s message
    (a `KeyError`, so `in`, `.get` and other `Mapping` use work as for a dict)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _redefinition(old: Any, new: Any) -> bool:
    """Whether `new` is `old` defined again: both functions or classes of the same module
    and qualified name (a re-run notebook cell, `importlib.reload`)."""
    def origin(obj: Any) -> tuple[Any, Any] | None:
        if not callable(obj) or not hasattr(obj, "__qualname__"):
            return None
        return getattr(obj, "__module__", None), obj.__qualname__
    return origin(old) is not None and origin(old) == origin(new)


class Registry(Mapping[str, T], Generic[T]):
    """A table from names to objects with one lookup error: visionkit's registries.

    Models, backbones, pretrained weights, tasks and the recipe's data sources are each a
    `Registry` (a timm-style registry): entries are added by `register` (directly or as
    a decorator), looked up by `lookup`, whose error names the kind, offers the closest
    names (`did_you_mean`) and lists the known ones. It is a read-only `Mapping` for
    everything else (`in`, iteration, `len`, `items`).

    Args:
        kind: what an entry is, in the singular ("model", "backbone"): errors say
            "Unknown model 'x'".
        plural: the plural for "Known models: ..."; defaults to `kind + "s"`.
        entries: the first entries, name to object.

    Example:

    >>> colours = Registry("colour")
    >>> colours.register("red", (255, 0, 0))
    (255, 0, 0)
    >>> @colours.register("green")
    ... def green():
    ...     return (0, 255, 0)
    >>> colours.lookup("red"), sorted(colours)
    ((255, 0, 0), ['green', 'red'])
    >>> colours.lookup("rde")
    Traceback (most recent call last):
    ...
    ValueError: Unknown colour 'rde'. Did you mean 'red'? Known colours: green, red.
    """

    def __init__(self, kind: str, plural: str | None = None,
                 entries: Mapping[str, T] | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, T] = {}
        for name, value in (entries or {}).items():
            self.register(name, value)

    def register(self, name: str, value: Any = ..., *, replace: bool = False) -> Any:
        """Adds `value` under `name`; without a value, returns a decorator that adds
        what it decorates (and returns it unchanged).

        A name is taken once: registering another object under it raises, except a
        redefinition of the same function or class (same module and qualified name, as
        when a notebook cell or `importlib.reload` runs the decorator again), which
        replaces the entry.

        Raises:
            TypeError: when `name` is not a string.
            ValueError: when `name` is empty or blank, or taken by another object and
                `replace` is False.
        """
        if not isinstance(name, str):
            raise TypeError(f"A {self.kind} name must be a string; received "
                            f"{type(name).__name__} {name!r}.")
        if not name.strip():
            raise ValueError(f"A {self.kind} name must not be empty; received {name!r}.")
        if value is ...:
            def decorator(obj: T) -> T:
                self.register(name, obj, replace=replace)
                return obj
            return decorator
        holder = self._entries.get(name)
        if holder is not None and holder is not value and not replace \
                and not _redefinition(holder, value):
            held = getattr(holder, "__qualname__", None) or type(holder).__name__
            raise ValueError(f"A {self.kind} named {name!r} is already registered "
                             f"({held}); pass replace=True to replace it.")
        self._entries[name] = value
        return value

    def lookup(self, name: Any) -> T:
        """The entry `name`.

        Raises:
            ValueError: for an unknown name: "Unknown <kind> 'x'. Did you mean ...?
                Known <kinds>: ...".
        """
        if not isinstance(name, str) or name not in self._entries:
            hint = did_you_mean(name, self._entries, n=3)
            raise ValueError(f"Unknown {self.kind} {name!r}.{hint} Known {self.plural}: "
                             f"{', '.join(sorted(self._entries)) or 'none'}.")
        return self._entries[name]

    def pop(self, name: str) -> T:
        """Removes and returns the entry `name` (the error of `lookup` when unknown)."""
        self.lookup(name)
        return self._entries.pop(name)

    def restore(self, entries: Mapping[str, T]) -> None:
        """Replaces every entry by `entries` (a snapshot taken with `dict(registry)`)."""
        self._entries = dict(entries)

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Sorted names, optionally only those whose entry satisfies `where`."""
        return sorted(name for name, entry in self._entries.items()
                      if where is None or where(entry))

    def __getitem__(self, name: str) -> T:
        try:
            return self.lookup(name)
        except ValueError as error:
            raise UnknownNameError(str(error)) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")

# Layers that move or re-type scores without changing them: the activation before them is
# the output's.
_PASSTHROUGH_LAYERS = ("Reshape", "Permute", "Flatten", "Identity", "Cropping1D",
                       "Cropping2D", "Cropping3D")


def _activation_name(activation: Any) -> str:
    return str(getattr(activation, "__name__", activation)).lower()


def output_activation(model: keras.Model) -> str | None:
    """The activation that produces `model`'s (first) output: "softmax", "sigmoid", ...

    Follows the output back through what does not change the scores: an
    `Activation("linear")` (e.g. the float32 cast of a mixed-precision model), a reshape,
    permutation, flatten, identity or crop, and into a nested model's own output. A
    `keras.layers.Softmax` layer and `keras.ops.softmax` / `keras.ops.sigmoid` in a
    functional model count as their activation. An output layer that hides its
    activation (a `Lambda`, a user's layer class) is probed (`probed_activation`).

    Args:
        model: a Keras model.

    Returns:
        The activation's lower-case name ("linear" for a layer without one), or None when
        the model's output cannot be traced (a model without layers).
    """
    outputs = getattr(model, "outputs", None) if getattr(model, "built", True) else None
    try:
        operation = producing_layer(outputs[0]) if outputs else None
    except (AttributeError, IndexError, TypeError, ValueError):
        operation = None
    if operation is None:  # subclassed models: their last layer
        layers = getattr(model, "layers", None)
        operation = layers[-1] if layers else None
    for _ in range(1000):
        if operation is None:
            return None
        if isinstance(operation, keras.Model) and operation is not model:
            return output_activation(operation)
        kind = type(operation).__name__
        if kind in ("Softmax", "Sigmoid", "LogSoftmax"):
            return kind.lower() if kind != "LogSoftmax" else "log_softmax"
        activation = getattr(operation, "activation", None)
        name = _activation_name(activation) if activation is not None else None
        passes = (kind in _PASSTHROUGH_LAYERS
                  or (isinstance(operation, keras.layers.Activation) and name == "linear"))
        if not passes:
            if name is None and is_opaque(operation):
                return probed_activation(model, operation)
            return name if name is not None else "linear"
        inputs = getattr(operation, "input", None)
        try:
            operation = producing_layer(inputs)
        except (AttributeError, ValueError):
            return name
    return None


# Pixels per side of the probe batch where a model's input size is not fixed.
_PROBE_SIDE = 32
# What probing found behind each opaque output layer (probed, and said, once per layer).
_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_opaque(operation: Any) -> bool:
    """Whether `operation` may apply an activation that its type and attributes do not
    show: a `Lambda`, or a layer class of the user's (not Keras's, not visionkit's)."""
    if isinstance(operation, keras.layers.Lambda):
        return True
    module = type(operation).__module__
    return isinstance(operation, keras.layers.Layer) and not isinstance(
        operation, keras.Model) and not module.startswith(("keras.", "visionkit."))


def probed_activation(model: keras.Model, operation: Any) -> str:
    """"softmax" when the first output of `model`, produced by the opaque `operation`
    (`Lambda(tf.nn.softmax)`), sums to 1 over its last axis on a probe batch (a black,
    a grey and a noise image of raw pixels), else "linear"; said once per layer in a
    `UserWarning`, also when the values all lie in 0..1 without summing to 1 (sigmoids or
    logits: nothing tells them apart). Read as logits, probabilities would be softmaxed
    a second time by losses and served outputs.

    Args:
        model: a Keras model with one input.
        operation: the opaque layer producing its first output.

    Returns:
        "softmax" or "linear".
    """
    if operation in _PROBED:
        return _PROBED[operation]
    found, values = "linear", None
    try:
        if len(model.inputs) == 1:
            shape = tuple(side or _PROBE_SIDE for side in model.inputs[0].shape[1:])
            noise = np.random.default_rng(0).uniform(0.0, 255.0, shape)
            probe = np.stack([np.zeros(shape), np.full(shape, 127.5), noise]).astype("float32")
            with tf.init_scope():  # eagerly, also when asked while a tf.function traces
                outputs = tf.nest.flatten(model(probe, training=False))[0]
                values = np.asarray(keras.ops.convert_to_numpy(outputs), np.float64)
    except Exception:  # noqa: BLE001  (a model the probe cannot run is read as linear)
        return found
    if values is not None and values.ndim >= 2 and np.all(np.isfinite(values)) \
            and values.min() >= 0.0 and values.max() <= 1.0:
        described = (f"The output of model {model.name!r} comes from layer "
                     f"{operation.name!r} ({type(operation).__name__}), whose activation "
                     "visionkit cannot see")
        if values.shape[-1] > 1 and np.allclose(values.sum(axis=-1), 1.0, atol=1e-4):
            found = "softmax"
            warnings.warn(f"{described}; on a probe batch it gives probabilities summing to "
                          "1, so it is read as a softmax (losses, metrics and served "
                          "outputs take it as probabilities; its logits are out of reach). "
                          "Write it as keras.layers.Softmax() or Activation('softmax') to "
                          "say so.", UserWarning, stacklevel=4)
        else:
            warnings.warn(f"{described}; on a probe batch its values all lie in 0..1, as "
                          "sigmoid probabilities do, but it is read as logits (losses apply "
                          "the sigmoid or softmax themselves; a binary unit's class 1 is a "
                          "score above 0). Write the activation as Activation('sigmoid') "
                          "(or end in a Dense layer with it) so that it is read as what it "
                          "is.", UserWarning, stacklevel=4)
    _PROBED[operation] = found
    return found


def ends_in_probabilities(model: keras.Model) -> bool:
    """Whether `model`'s output is a softmax or sigmoid.

    Builders end in a layer named after their output with `activation="softmax"` (the
    default) or `activation=None` for logits. Losses and served outputs use this to decide
    whether to apply softmax themselves. A model's own ending counts as well: a
    `keras.layers.Softmax`, `keras.ops.softmax`, an `Activation("softmax")` followed by a
    float32 `Activation("linear")` or a reshape, or a nested model ending in softmax
    (see `output_activation`).

    Args:
        model: a Keras model.

    Returns:
        True if the activation that produces the output is softmax or sigmoid.
    """
    return output_activation(model) in _PROBABILITY_ACTIVATIONS


class Task:
    """Base class of the task objects.

    Attributes:
        name: the task's name as recipes and metadata spell it.
        target_key: the batch key of the training target ("labels", ...).
        monitor: the validation quantity checkpoints and early stopping watch.
        monitor_mode: "max" or "min".
        output_rank: the rank of the model's output `fit` checks before training (2:
            `[batch, classes]`, 4: `[batch, height, width, classes]`), or None.
        batch_size: examples per batch of the task's embedded data (`vk.data.shapes`) and
            of a recipe's data section when none is given.
    """

    name: str = ""
    target_key: str = ""
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    output_rank: int | None = None
    # Examples per batch of the task's embedded data when none is given (`vk.data.shapes`).
    batch_size: int = 32
    # Whether the model's outputs are one score per class (False: e.g. embedding vectors).
    outputs_are_classes: bool = True
    # Each image has exactly one integer class id `[N]` and the model scores every class
    # (what confusion matrices, error analysis and P x K class-balanced batches need).
    single_label: bool = False
    # Each image has a multi-hot label `[N, K]` (independent sigmoids).
    multi_label: bool = False
    # An adversarial attack can follow this task's loss to the pixels with the true targets
    # (`fit(adversarial=...)`, `evaluate(attack=...)`).
    attackable: bool = False
    # The outputs are one softmax distribution per image or per pixel, which knowledge
    # distillation (`vk.train.distill`) matches between teacher and student.
    distillable: bool = False
    # Images per call of a portable (LiteRT, ONNX) export's graph: None for any batch, 1
    # for tasks whose post-processing runs per image (detection's NMS).
    portable_batch_size: int | None = None
    # What `vk.data.check` counts per class: "images", "objects" or "pixels".
    class_count_unit: str = "images"
    # The training defaults `vk.train.fit` fills unset options from (a
    # `visionkit.train.defaults.TaskDefaults`), or None when the task has none.
    training_defaults: Any = None
    # Inclusive (min, max) shapes per image of the task's `vk.data.shapes` set, or None
    # when the synthetic shapes have no version for this task.
    shapes_per_image: tuple[int, int] | None = None
    # Suffixes of the files `prediction_result` writes per image, `<stem><suffix>` (a
    # task that writes none: empty); `predict_files` gives each image its own stem.
    prediction_files: tuple[str, ...] = ()

    def loss(self, model: keras.Model) -> keras.losses.Loss:
        raise NotImplementedError

    def metrics(self, num_classes: int) -> list[keras.metrics.Metric]:
        raise NotImplementedError

    # The box format augmentation layers are told about (None: the task has no boxes).
    bounding_box_format: str | None = None

    def compile(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                num_classes: int, loss: Any = None, metrics: Any = None,
                jit_compile: bool = False) -> None:
        """Compiles `model` for this task (`vk.train.fit` asks the task).

        The default compiles with `loss` (or the task's `loss(model)`) and `metrics` (or
        the task's `metrics(num_classes)`).
        """
        model.compile(optimizer=optimizer,
                      loss=loss if loss is not None else self.loss(model),
                      metrics=list(metrics) if metrics is not None else self.metrics(num_classes),
                      jit_compile=jit_compile)

    def prepare_augmented(self, batch: dict) -> dict:
        """Graph code run on each batch before augmentation layers (e.g. shape masks)."""
        return batch

    def finish_augmented(self, batch: dict, image_size: tuple[int, int]) -> dict:
        """Graph code run on each batch after augmentation (e.g. clip moved boxes)."""
        return batch

    def callbacks(self, data: Any) -> list[keras.callbacks.Callback]:
        """Extra callbacks `vk.train.fit` adds for this task (e.g. periodic mAP)."""
        return []

    def serving_outputs(self, outputs: tf.Tensor, image_sizes: tf.Tensor,
                        model: keras.Model) -> dict[str, tf.Tensor]:
        """Turns a model's raw outputs into the served tensors (inside a tf.function)."""
        raise NotImplementedError

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset,
                 class_names: list[str]) -> dict[str, Any]:
        """The task's metrics of `model` on `dataset` (a JSON-ready dict)."""
        raise NotImplementedError

    def evaluate_with_examples(self, model: keras.Model, dataset: tf.data.Dataset,
                               class_names: list[str]) -> tuple[dict[str, Any], Any]:
        """`evaluate`'s metrics and the examples its figures draw (None: no examples).

        The task object keeps nothing: the examples go back to the caller, which hands
        them to `plot_evaluation`. By default: `evaluate`'s metrics and no examples.
        """
        return self.evaluate(model, dataset, class_names), None

    def plot_evaluation(self, metrics: dict[str, Any], class_names: list[str],
                        out_dir: str, examples: Any = None) -> list[str]:
        """Writes the task's evaluation figures to `out_dir`; returns their paths.

        Args:
            metrics: what `evaluate` returned.
            class_names: the class names.
            out_dir: the folder of the figures.
            examples: the examples `evaluate_with_examples` returned, or None.
        """
        return []

    def prediction_result(self, file: str, outputs: dict[str, np.ndarray],
                          class_names: list[str], out_dir: str | None = None,
                          top_k: int = 3) -> dict[str, Any]:
        """One image's served outputs as `visionkit predict` reports them.

        Args:
            file: the image file that was sent.
            outputs: that image's served arrays (without the batch axis).
            class_names: the exported class names.
            out_dir: a folder for files the task writes per image (e.g. masks), or None.
            top_k: how many of the most probable classes a classifier lists.

        A task with `prediction_files` also takes `stem`: the name its files start with
        (None: the image's name without its extension).

        Returns:
            A dict with at least `file`; a `summary` string, when present, is what the
            CLI prints for the image.
        """
        return {"file": file, "outputs": outputs}

    def class_counts(self, target: Any, num_classes: int) -> np.ndarray:
        """int64 `[num_classes]`: how often each class occurs in one example's target.

        What `vk.data.check` sums per split, in the task's `class_count_unit` (images for
        class labels, objects for boxes, pixels for masks; padding and ignored values are
        left out).

        Args:
            target: one example's target as NumPy (the value under `target_key`).
            num_classes: the number of classes.
        """
        raise NotImplementedError(f"Task {self.name!r} does not count its classes.")

    def shapes_data(self, class_names: tuple[str, ...], n: int, image_size: tuple[int, int],
                    seed: int | None, noise: float, shapes_per_image: tuple[int, int] | None,
                    validation_split: float, batch_size: int, augment: Any) -> Any:
        """This task's version of the synthetic shapes set (`vk.data.shapes` asks the task).

        Args:
            class_names: the shape classes, in class-id order.
            n, image_size, seed, noise, validation_split, batch_size, augment: as
                `vk.data.shapes` takes them.
            shapes_per_image: inclusive `(min, max)` shapes per image, or None for the
                task's `shapes_per_image`.

        Returns:
            A `visionkit.data.Data`.
        """
        raise NotImplementedError(f"Task {self.name!r} has no synthetic shapes set.")

    def portable_outputs(self, model: keras.Model, outputs: Any,
                         image_size: tuple[int, int]) -> dict[str, tf.Tensor]:
        """The served tensors of a portable (LiteRT, ONNX) export, inside a `tf.function`.

        The graph takes images at the model's own size (`image_size`); by default the
        served outputs are `serving_outputs`'s with that size for every image.
        """
        batch = tf.shape(tf.nest.flatten(outputs)[0])[0]
        sizes = tf.tile(tf.constant([list(image_size)], tf.int32), [batch, 1])
        return self.serving_outputs(outputs, sizes, model)

    def parity(self, reference: dict[str, np.ndarray],
               served: dict[str, np.ndarray]) -> dict[str, float]:
        """Agreement metrics of an export's served outputs with the reference's (same
        images, batch first); see `visionkit.export.parity`."""
        raise NotImplementedError(f"Task {self.name!r} has no export parity metrics.")

    def explains(self, model: keras.Model) -> bool:
        """Whether this task's explanation targets fit `model`'s outputs."""
        return False

    def explain_heatmaps(self, model: keras.Model, images: Any) -> np.ndarray:
        """Grad-CAM heat maps `[N, H, W]` in 0..1 of this task's target on `images`
        (what `fit(explain_every=...)` logs)."""
        raise NotImplementedError(f"Task {self.name!r} has no explanation heat maps yet.")

    def explain_target(self, model: keras.Model, target: Any = None) -> Any:
        """The `visionkit.interpret.targets.Target` explaining `target` (None: predicted)."""
        raise NotImplementedError(f"Task {self.name!r} has no explanation target yet.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def predict_dataset(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Runs `model` over a batched `(images, targets)` dataset.

    Returns:
        `(targets, outputs)` as NumPy arrays concatenated over batches.
    """

    @tf.function(reduce_retracing=True)
    def forward(images):
        return model(images, training=False)

    targets, outputs = [], []
    for images, batch_targets in dataset:
        outputs.append(np.asarray(forward(images)))
        targets.append(np.asarray(batch_targets))
    if not outputs:
        raise ValueError("Cannot evaluate on an empty dataset: it yielded no batches.")
    return np.concatenate(targets), np.concatenate(outputs)


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: lists a `Task` subclass under its `name` for `get_task`.

    Raises:
        ValueError: when another class already holds the name.
    """
    return TASKS.register(cls.name, cls)


def get_task(task: str | Task, **options: Any) -> Task:
    """Returns the task object for a name (or the object itself).

    Args:
        task: a task name ("classification", "segmentation", "detection", "multilabel"),
            a `Task` (returned as it is) or another object with the task's `name` (the
            registered task of that name).
        **options: keyword arguments of the task's class (e.g. `threshold=` of
            "multilabel"); only with a name.

    Raises:
        ValueError: for an unknown task name, listing the known ones.
    """
    if not isinstance(task, (str, Task)) and isinstance(getattr(task, "name", None), str):
        task = task.name  # a stand-in that carries only the name (a user's own object)
    if isinstance(task, Task):
        if options:
            raise ValueError(f"Task options {sorted(options)} need a task name; received "
                             f"the task object {task!r}.")
        return task
    return TASKS.lookup(task)(**options)


def tasks_with(attribute: str) -> tuple[str, ...]:
    """The names of the registered tasks whose `attribute` is set (truthy), sorted.

    What errors list when an option serves only some tasks.

    Example:

    >>> import visionkit
    >>> tasks_with("distillable")
    ('classification', 'segmentation')
    """
    return tuple(sorted(name for name, cls in TASKS.items() if getattr(cls, attribute)))
