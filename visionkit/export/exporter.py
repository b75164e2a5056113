"""`saved_model`: export a Keras model as a versioned, self-verified TensorFlow SavedModel.

The export is written to a staging folder inside the model root (its name starts with a
dot, so TensorFlow Serving ignores it), reloaded with `tf.saved_model.load` and compared
with the Keras model, flushed to disk, then renamed into place as the next integer
version. A failure at any step removes the staging folder; earlier versions are never
touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.data.preprocessing import Preprocessing
from visionkit.export import verify as verification
from visionkit.export import versions as version_layout
from visionkit.export.metadata import build_metadata, to_json_value, write_assets
from visionkit.export.signatures import ServingModule, serving_signatures
from visionkit.models.detection import is_detector, rescales_raw_pixels
from visionkit.train.auxiliary import main_head
from visionkit.vocabulary import TASKS, Task, get_task

if TYPE_CHECKING:
    from visionkit.data.pipeline import Data

__all__ = ["saved_model"]

CHANNELS = 3


@dataclasses.dataclass(frozen=True)
class _ExportSpec:
    task: Task
    class_names: tuple[str, ...]
    image_size: tuple[int, int]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, CHANNELS)


def saved_model(
    model: keras.Model,
    directory: str | os.PathLike,
    data: Data | None = None,
    *,
    task: str | Task | None = None,
    class_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    version: int | None = None,
    verify: bool = True,
) -> str:
    """Exports `model` as the next version of a TensorFlow Serving model root.

    The SavedModel's signatures turn their inputs into model pixels exactly as the
    training pipeline of `data` did (`data.preprocessing`, a
    `visionkit.data.preprocessing.Preprocessing`: EXIF orientation, DCT-scaled decoding
    rule, channel conversion, resize method and antialiasing, value range); without
    `data`, the documented defaults (EXIF orientation applied, no DCT scaling, bilinear
    antialiased resize), and the metadata says `"source": "defaults"`. Two signatures
    return the task's served outputs (classification: `probabilities` float32 `[B, C]`
    and `class_id` int32 `[B]`):

    - `serving_default`: `images`, uint8 `[B, H, W, 3]` of any size (upright RGB), resized
      inside the graph to the model's input size with the spec's resize.
    - `serve_bytes`: `images`, string `[B]` of encoded JPEG, PNG, WebP, BMP or GIF
      images (first frame), each decoded, turned upright and resized by the spec.

    A third, `preprocess_bytes`, returns the pixels `serve_bytes` feeds the model
    (`images` float32 `[B, H, W, 3]` in 0..255, `image_sizes` int32 `[B, 2]`).

    Its `assets/` folder holds `labels.txt` (one class name per line) and
    `visionkit.json` (task, input size, class names, library versions, creation time,
    `metrics`, signature names, and the `preprocessing` block). It loads with
    `tf.saved_model.load` alone; no visionkit is needed to serve it.

    The export is staged in a hidden folder inside `directory`, verified, then renamed
    to `directory/<version>`, so a crash never leaves a half-written version and
    existing versions are never modified.

    Args:
        model: a built Keras model with one image input `[B, H, W, 3]` taking raw
            0..255 pixels (as every visionkit model does). A model with auxiliary
            classifiers (a dict output with "predictions", GoogLeNet's) is exported
            without them: the served model is its "predictions" head.
        directory: the model root, e.g. "saved_models/digits_cnn"; created if missing.
        data: the `Data` set the model was trained on. Supplies the task, class names
            and image size, and its validation images are used for verification.
            Defaults to None.
        task: the task (name or object) when `data` is not given; if both are given
            they must agree. A detector (YOLOv8 or RetinaNet, visionkit's or built with
            keras-cv) states its task by its class: "detection" is then taken without
            `data` or `task`, and any other task is refused (a keras-cv detector whose
            backbone does not rescale pixels, `include_rescaling=False`, is exported with
            a warning: exports serve raw 0..255 pixels). Other models do not say
            theirs (a `[B, C]` output serves classification, multi-label or embeddings
            alike), so they need `data` or `task`. Defaults to None.
        class_names: names per class id when `data` is not given; if both are given
            they must agree; one per class of the model's output (a detector's
            `num_classes`). Not needed for the "embedding" task (its outputs are not
            classes). Defaults to None.
        metrics: evaluation metrics to record in `visionkit.json` (JSON-compatible
            values; NumPy scalars and arrays are converted). Defaults to None.
        version: the version number to write. Defaults to the highest existing version
            plus one (1 for a new root). An existing version is never overwritten.
        verify: reload the export and compare its outputs with the Keras model's on a
            few images (the validation split of `data`, else seeded random pixels), at
            the model's input size and at another size; and feed a few encoded files
            (JPEG with EXIF orientation 6, a JPEG 5x the input size, PNG, grayscale,
            16-bit PNG) through the training pipeline's decoder and through
            `preprocess_bytes` / `serve_bytes`, refusing the export when the model
            inputs differ by more than 1 grey level. Defaults to True.

    Returns:
        The path of the new version directory, `os.path.join(directory, str(version))`.

    Raises:
        ValueError: if the task, class names or image size are missing or inconsistent
            with the model or `data`, or `version` is not a non-negative integer.
        TypeError: if `model` is not a Keras model, or `metrics` are not JSON-compatible.
        FileExistsError: if `version` already exists.
        ExportVerificationError: if the reloaded SavedModel's outputs differ from the
            Keras model's beyond tolerance, or its pixels from the training decoder's by
            more than 1 grey level (`visionkit.export.ExportVerificationError`); nothing
            is renamed into place.

    Example:

    >>> import tempfile, visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
    ...                         filters=(4,))
    >>> root = tempfile.mkdtemp()
    >>> path = vk.export.saved_model(model, root, task="classification",
    ...                              class_names=["cat", "dog"])
    >>> os.path.basename(path)
    '1'
    >>> os.path.basename(vk.export.saved_model(model, root, task="classification",
    ...                                        class_names=["cat", "dog"]))
    '2'
    """
    model = main_head(model)  # auxiliary classifiers are for training only
    spec = _export_spec(model, data, task, class_names)
    preprocessing = _serving_preprocessing(data, spec.image_size)
    if metrics is not None and not isinstance(metrics, Mapping):
        raise TypeError(f"Expected metrics to be a dict of metric values; received "
                        f"{type(metrics).__name__}: {metrics!r}.")
    metrics = to_json_value(metrics, "metrics") if metrics is not None else None
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(
            f"Expected the model root {directory!r} to be a directory; it is a file.")
    os.makedirs(directory, exist_ok=True)
    version = _choose_version(directory, version)
    with staged_version(directory, version) as (staging_dir, version_dir):
        metadata = build_metadata(
            task=spec.task.name, input_shape=spec.input_shape,
            class_names=spec.class_names, version=version, metrics=metrics,
            model_name=model.name, data=data.describe() if data is not None else None,
            preprocessing=preprocessing.to_dict())
        with tempfile.TemporaryDirectory(prefix="visionkit-assets-") as asset_dir:
            asset_paths = write_assets(asset_dir, spec.class_names, metadata)
            module = ServingModule(model, spec.task, spec.image_size, asset_paths,
                                   preprocessing=preprocessing)
            _save(module, staging_dir)
        if verify:
            verification.verify_saved_model(staging_dir, model, spec.task, spec.image_size,
                                            data, preprocessing=preprocessing)
    return version_dir


# -- what to export ----------------------------------------------------------------------
def _serving_preprocessing(data: Data | None, image_size: tuple[int, int]) -> Preprocessing:
    """The data's `Preprocessing` spec, or the documented defaults (`source="defaults"`)."""
    if data is None:
        return Preprocessing(image_size, source="defaults")
    spec = data.preprocessing
    if spec.image_size != tuple(image_size):
        raise ValueError(f"The data's preprocessing resizes to {spec.image_size} but the data "
                         f"yields {tuple(image_size)}; rebuild the data set.")
    return spec



def _export_spec(model: keras.Model, data: Data | None, task: str | Task | None,
                 class_names: Sequence[str] | None) -> _ExportSpec:
    """Collects task, class names and image size from `data`, the arguments and the model."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model; received {type(model).__name__}.")
    model_size = _model_image_size(model)
    model_task = _task_of_model(model)
    if is_detector(model) and rescales_raw_pixels(model) is False:
        warnings.warn(
            f"The detector {model.name!r} has a backbone built with include_rescaling=False: "
            "it does not divide pixels by 255, yet the export serves it raw 0..255 pixels, "
            "as every visionkit model takes them. If it was trained on images scaled to "
            "0..1 outside the model, its served detections are wrong: rebuild the backbone "
            "with include_rescaling=True and load the same weights.", stacklevel=3)

    if data is not None:
        resolved_task = data.task
        if model_task is not None and model_task != resolved_task.name:
            raise ValueError(
                f"The model {model.name!r} is a {type(model).__name__}, a {model_task} model, "
                f"but the data's task is {resolved_task.name!r}; export it with the data it "
                "was trained on.")
        if task is not None and get_task(task).name != resolved_task.name:
            raise ValueError(
                f"task={get_task(task).name!r} contradicts the data's task "
                f"{resolved_task.name!r}; pass one or make them agree.")
        names = tuple(data.class_names)
        if class_names is not None and tuple(str(c) for c in class_names) != names:
            raise ValueError(
                f"class_names={list(class_names)!r} contradicts the data's class names "
                f"{list(names)!r}; pass one or make them agree.")
        data_size = tuple(int(s) for s in data.image_size)
        if model_size is not None and None not in model_size and model_size != data_size:
            raise ValueError(
                f"The model takes images of size {model_size} (height, width) but the data "
                f"yields {data_size}; export the model that was trained on this data.")
        image_size = data_size
    else:
        if task is None and model_task is None:
            raise ValueError(
                f"Cannot tell the task of the model {model.name!r} ({type(model).__name__}, "
                f"output shape {_output_shape(model)}): only detectors state theirs. Pass "
                "data=<the Data set the model was trained on> or task=<one of "
                f"{TASKS.names()}>.")
        resolved_task = get_task(task if task is not None else model_task)
        if model_task is not None and resolved_task.name != model_task:
            raise ValueError(
                f"task={resolved_task.name!r} contradicts the model {model.name!r}, a "
                f"{type(model).__name__} ({model_task}); pass task={model_task!r} or none.")
        if class_names is None and not getattr(resolved_task, "outputs_are_classes", True):
            class_names = ()  # e.g. embeddings: served classes are not the trained ones
        if class_names is None:
            count = _num_output_channels(model)
            raise ValueError(
                f"Cannot tell the class names of the model {model.name!r}: pass "
                "data=<the Data set the model was trained on> or class_names=[...] (one "
                "name per class id" + (f": {count} names" if count is not None else "")
                + ").")
        names = tuple(str(c) for c in class_names)
        if model_size is None or None in model_size:
            raise ValueError(
                f"The model's input size is not fixed (input shape {_input_shape(model)}); "
                "pass data= so the export knows which size to resize served images to.")
        image_size = model_size

    if not names and getattr(resolved_task, "outputs_are_classes", True):
        raise ValueError("Expected at least one class name; received none.")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Expected distinct class names; {duplicates} occur more than once.")
    num_outputs = _num_output_channels(model)
    if num_outputs is not None and num_outputs != len(names) \
            and getattr(resolved_task, "outputs_are_classes", True):
        detector = is_detector(model)
        binary = (" A single unit is one class's score (a binary Keras classifier, "
                  "Dense(1, activation='sigmoid')): export it with task='multilabel' and "
                  "class_names=[the name of class 1], or train it with one unit per class."
                  if num_outputs == 1 and len(names) == 2 and not detector else "")
        raise ValueError(
            f"The model has {num_outputs} {'classes' if detector else 'outputs per image'} "
            f"(output shape {_output_shape(model)}) but {len(names)} class names were "
            f"given: {list(names)}.{binary}")
    return _ExportSpec(task=resolved_task, class_names=names, image_size=image_size)


def _task_of_model(model: keras.Model) -> str | None:
    """The task the model's class states ("detection" for a detector), else None."""
    return "detection" if is_detector(model) else None


def _output_shape(model: keras.Model) -> Any:
    try:
        return model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return "unknown"


def _input_shape(model: keras.Model) -> tuple | None:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if inputs is None:
        return None
    if len(inputs) != 1:
        raise ValueError(f"Expected a model with one image input; {model.name!r} has "
                         f"{len(inputs)} inputs.")
    return tuple(inputs[0].shape)


def _model_image_size(model: keras.Model) -> tuple | None:
    """`(height, width)` of the model's input (entries may be None), or None if unknown."""
    if not model.built:
        raise ValueError(f"The model {model.name!r} is not built; build it or call it on a "
                         "batch of images before exporting.")
    shape = _input_shape(model)
    if shape is None:
        return None
    if len(shape) != 4:
        raise ValueError(f"Expected a model input of shape [batch, height, width, 3]; "
                         f"received input shape {shape}.")
    if shape[-1] not in (None, CHANNELS):
        raise ValueError(
            f"Expected a model on RGB images (3 channels), as the serving signatures feed "
            f"RGB; received input shape {shape}.")
    return tuple(None if s is None else int(s) for s in shape[1:3])


def _num_output_channels(model: keras.Model) -> int | None:
    """The classes of a detector, the last dimension of a single-output model's output,
    or None if not that simple."""
    if is_detector(model):
        return int(model.num_classes)
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    last = outputs[0].shape[-1]
    return None if last is None else int(last)


def _choose_version(directory: str, version: int | None) -> int:
    if version is None:
        return version_layout.next_version(directory)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0:
        raise ValueError(f"Expected version to be a non-negative integer; received "
                         f"version={version!r}.")
    version = int(version)
    if version in version_layout.list_versions(directory):
        raise FileExistsError(
            f"Version {version} already exists in {directory!r}; exports never overwrite a "
            "version. Pass another version, or none to take the next one.")
    return version


# -- writing -----------------------------------------------------------------------------
def _save(module: ServingModule, directory: str) -> None:
    """Traces the signatures and writes the SavedModel into `directory`."""
    tf.saved_model.save(module, directory, signatures=serving_signatures(module))


@contextlib.contextmanager
def staged_version(directory: str, version: int) -> Iterator[tuple[str, str]]:
    """Yields `(staging_dir, version_dir)`; the staging folder becomes the version on a
    clean exit and is removed on any error, so no partial version is ever left behind."""
    version_dir = os.path.join(directory, str(version))
    # os.mkdir (not tempfile.mkdtemp, which makes it private to the user, mode 0o700)
    # gives the version the permissions of any new folder, readable by a serving process.
    staging_dir = os.path.join(directory, version_layout.STAGING_PREFIX + uuid.uuid4().hex)
    os.mkdir(staging_dir)
    try:
        yield staging_dir, version_dir
        _publish(staging_dir, version_dir, directory, version)
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise
    _fsync_dir(directory)


def _publish(staging_dir: str, version_dir: str, directory: str, version: int) -> None:
    """Moves a complete staging folder to its version folder (flushed to disk first)."""
    _fsync_tree(staging_dir)
    if os.path.exists(version_dir):
        raise FileExistsError(
            f"Version {version} appeared in {directory!r} during the export (another "
            "export running at the same time?); not overwriting it.")
    os.rename(staging_dir, version_dir)


def _fsync_tree(directory: str) -> None:
    """Flushes every file under `directory` to disk, so the rename publishes whole files."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(root)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
