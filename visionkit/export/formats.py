"""`litert` and `onnx`: the model as a `.tflite` or `.onnx` file, proven equal to Keras.

Both convert the frozen graph of `visionkit.export.portable` (uint8 images at the
model's input size in, the task's served outputs out, decoding and NMS inside for
detectors), write it with `labels.txt` and `visionkit.json` into a staging folder of the
model root, load it in its own runtime (`ai_edge_litert` / `onnxruntime`), compare it
with the Keras model on the validation images of `data` (`visionkit.export.parity`), and
only then rename the folder into place as the next integer version, exactly as
`vk.export.saved_model` does. A failed conversion or parity check leaves no version.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.export import parity
from visionkit.export.exporter import (
    _choose_version,
    _export_spec,
    _serving_preprocessing,
    staged_version,
)
from visionkit.export.metadata import build_metadata, to_json_value, write_assets
from visionkit.export.portable import INPUT_NAME, batch_size_for, portable_function
from visionkit.export.runtimes import FORMAT_NAMES, MODEL_FILES, PortablePredictor
from visionkit.export.verify import ExportVerificationError, reference_outputs
from visionkit.models.layers.max_unpooling import MaxUnpooling2D
from visionkit.vocabulary import BOUNDING_BOXES, SEGMENTATION_MASKS, get_task

if TYPE_CHECKING:
    from visionkit.data.pipeline import Data

__all__ = ["litert", "onnx", "export_formats", "format_root", "QUANTIZATIONS", "LiteRTConversionError",
           "REPRESENTATIVE_COUNT", "REPRESENTATIVE_SEED", "CHECK_IMAGES"]

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
REPRESENTATIVE_COUNT = 100
REPRESENTATIVE_SEED = 0
# Validation images the parity check runs through both sides.
CHECK_IMAGES = 16
CHECK_IMAGES_QUANTIZED = 100
DEFAULT_OPSET = 17


class LiteRTConversionError(ValueError):
    """TensorFlow's LiteRT converter cannot express an op of the model."""


def litert(model: keras.Model, directory: str | os.PathLike, data: Data | None = None, *,
           quantize: str | None = None, task: Any = None,
           class_names: Sequence[str] | None = None, select_tf_ops: bool = False,
           representative_count: int = REPRESENTATIVE_COUNT,
           representative_seed: int = REPRESENTATIVE_SEED,
           version: int | None = None, verify: bool = True) -> str:
    """Exports `model` as `<directory>/<version>/model.tflite`, checked in the LiteRT runtime.

    The model takes uint8 images `[B, H, W, 3]` at the model's input size (`B` is 1 for
    detectors) and returns the SavedModel's `serving_default` outputs (classification
    `probabilities`, `class_id`; segmentation `mask`, `probabilities`, `image_size`;
    detection `boxes` xyxy pixels, `scores`, `classes`, `num_detections` after NMS).
    Resizing stays outside: the default `Preprocessing` (antialiased resize,
    `ScaleAndTranslate`) has no LiteRT builtin, so clients resize with the spec recorded
    in `visionkit.json` (`vk.export.load(path).preprocessing`).

    Args:
        model: a built Keras model on raw 0..255 pixels.
        directory: the model root; the export becomes its next integer version.
        data: the `Data` the model was trained on (task, class names, image size,
            validation images for the parity check, training images for int8
            calibration). Defaults to None.
        quantize: None (float32), "float16" (float16 weights), "dynamic" (int8 weights,
            float activations) or "int8" (int8 weights and activations, calibrated on
            `representative_count` training images of `data` drawn with
            `representative_seed`; needs `data`; softmax, sigmoid, argmax and NMS stay
            float32, and when parity fails the ops that lost most precision follow,
            step by step, up to half of them: listed as `float_layers` in
            `visionkit.json`, with a warning). Defaults to None.
        task, class_names: as for `vk.export.saved_model`, when `data` is not given.
        select_tf_ops: allow TensorFlow select ops for ops LiteRT lacks; such a file
            needs the Flex delegate (TensorFlow's `tf.lite.Interpreter`), not the
            `ai_edge_litert` package. Defaults to False.
        representative_count: int8 calibration images. Defaults to 100.
        representative_seed: seed of their draw. Defaults to 0.
        version: the version to write. Defaults to the next one.
        verify: run the parity check (`visionkit.export.parity.THRESHOLDS`) before
            publishing. Defaults to True.

    Returns:
        The new version directory.

    Raises:
        LiteRTConversionError: naming the op and layer LiteRT cannot convert, with the
            fallback (`quantize=None`, `select_tf_ops=True`, or ONNX / SavedModel).
        ExportVerificationError: if parity with the Keras model fails; nothing is
            written.
        ValueError: for an unknown `quantize`, or "int8" without `data` or with a
            `representative_count` that is not a whole number >= 1.

    Example:

    >>> import tempfile, visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
    ...                         filters=(4,))
    >>> path = vk.export.litert(model, tempfile.mkdtemp(), task="classification",
    ...                         class_names=["cat", "dog"])
    >>> sorted(os.listdir(path))
    ['labels.txt', 'model.tflite', 'visionkit.json']
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Expected quantize to be one of {QUANTIZATIONS}; received "
                         f"quantize={quantize!r}.")
    if quantize == "int8" and data is None:
        raise ValueError("quantize='int8' calibrates on a representative sample of the "
                         "training images: pass data=<the Data set the model was trained on>.")
    if quantize == "int8" and (isinstance(representative_count, bool) or not isinstance(
            representative_count, (int, np.integer)) or representative_count < 1):
        raise ValueError(f"Expected representative_count to be a whole number of int8 "
                         f"calibration images >= 1; received representative_count="
                         f"{representative_count!r}.")
    extra: dict[str, Any] = {"quantization": quantize or "float32",
                             "select_tf_ops": bool(select_tf_ops),
                             "runtime": "tf.lite.Interpreter (Flex)" if select_tf_ops
                             else "ai_edge_litert.interpreter.Interpreter"}
    calibration = None
    if quantize == "int8":
        # The training split's decoded, resized, unaugmented uint8 images: what serving
        # receives after the recorded preprocessing.
        calibration = _representative_images(data, None, representative_count,
                                             representative_seed)
        extra["representative_dataset"] = {"source": "data.train_examples",
                                           "count": len(calibration),
                                           "seed": int(representative_seed)}
        if len(calibration) < representative_count:
            extra["representative_dataset"]["requested"] = int(representative_count)
            warnings.warn(
                f"int8 calibration of {model.name!r} uses {len(calibration)} training "
                f"images, all the data has, fewer than representative_count="
                f"{representative_count}: activation ranges rarer than 1 in "
                f"{len(calibration)} images are clipped.", stacklevel=2)

    debuggers: list = []

    def convert(function, spec, path: str) -> None:
        contents = _convert_litert(function, model, quantize, select_tf_ops, calibration,
                                   debuggers)
        with open(path, "wb") as file:
            file.write(contents)

    selective = _SelectiveQuantization(debuggers, model) if quantize == "int8" else None
    try:
        return _export(model, directory, data, "litert", convert, task, class_names,
                       version, verify, quantize, extra,
                       refine=selective.refine if selective is not None else None)
    except ExportVerificationError as error:
        if not debuggers:
            raise
        worst = selective.worst(5)
        tried = (f" Keeping the worst {selective.float_count} of "
                 f"{len(selective.ranked())} ranked int8 ops in float32 did not restore parity either."
                 if selective.float_count else "")
        raise ExportVerificationError(
            f"{error}{tried} The int8 tensors with the largest quantization error (root "
            f"mean squared error in units of the tensor's int8 step; about 0.29 is a "
            f"rounding error alone), from tf.lite.experimental.QuantizationDebugger on the "
            f"{len(calibration)} calibration images: {'; '.join(worst)}. Export "
            f"quantize='float16' or 'dynamic', or float32.") from error


def onnx(model: keras.Model, directory: str | os.PathLike, data: Data | None = None, *,
         opset: int = DEFAULT_OPSET, task: Any = None,
         class_names: Sequence[str] | None = None, version: int | None = None,
         verify: bool = True) -> str:
    """Exports `model` as `<directory>/<version>/model.onnx` (tf2onnx), checked in ONNX Runtime.

    Same graph, inputs and outputs as `litert` (uint8 `images` `[B, H, W, 3]` at the
    model's size, `B` = 1 for detectors; NMS as ONNX `NonMaxSuppression`), converted with
    `tf2onnx.convert.from_function`, and the same staging, metadata and float32 parity
    check (probabilities within 1e-4, masks >= 99.9%, detections mAP50 >= 0.99).

    Args:
        model, directory, data, task, class_names, version, verify: as for `litert`.
        opset: the ONNX opset. Defaults to 17.

    Returns:
        The new version directory.

    Raises:
        ExportVerificationError: if parity with the Keras model fails; nothing is
            written.
        ValueError: if tf2onnx cannot convert the graph (naming the op).

    Example:

    >>> import tempfile, visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
    ...                         filters=(4,))
    >>> path = vk.export.onnx(model, tempfile.mkdtemp(), task="classification",
    ...                       class_names=["cat", "dog"])
    >>> sorted(os.listdir(path))
    ['labels.txt', 'model.onnx', 'visionkit.json']
    """
    def convert(function, spec, path: str) -> None:
        import tf2onnx

        try:
            proto, _ = tf2onnx.convert.from_function(
                function, input_signature=list(function.input_signature),
                opset=int(opset))
        except Exception as error:  # tf2onnx raises bare exceptions
            raise ValueError(f"tf2onnx could not convert the model {model.name!r} at opset "
                             f"{opset}: {error}") from error
        with open(path, "wb") as file:
            file.write(proto.SerializeToString())

    import tf2onnx

    return _export(model, directory, data, "onnx", convert, task, class_names, version,
                   verify, None, {"opset": int(opset), "tf2onnx": tf2onnx.__version__,
                                  "runtime": "onnxruntime.InferenceSession"})


def format_root(root: str | os.PathLike, export_format: str) -> str:
    """Where a format's versions go: the SavedModel in `root` (TensorFlow Serving's layout),
    LiteRT in `root/litert`, ONNX in `root/onnx` (names TensorFlow Serving ignores)."""
    from visionkit.export.runtimes import FORMATS

    if export_format not in FORMATS:
        raise ValueError(f"Expected export formats among {FORMATS}; received "
                         f"{export_format!r}.")
    root = os.fspath(root)
    return root if export_format == "saved_model" else os.path.join(root, export_format)


def export_formats(model: keras.Model, root: str | os.PathLike, formats: Sequence[str],
                   data: Data | None = None, metrics: Any = None) -> dict[str, str]:
    """Exports `model` in each of `formats` ("saved_model", "litert", "onnx") under `root`.

    Each format goes to `format_root(root, format)` as its next version, with its own
    checks; the first failure stops (formats already written stay).

    Returns:
        Format name -> the new version directory.
    """
    from visionkit.export.exporter import saved_model

    formats = list(dict.fromkeys(formats))
    paths = {name: format_root(root, name) for name in formats}
    if not formats:
        raise ValueError("Expected at least one export format; received none.")
    written = {}
    for name in formats:
        if name == "saved_model":
            written[name] = saved_model(model, paths[name], data=data, metrics=metrics)
        elif name == "litert":
            written[name] = litert(model, paths[name], data=data)
        else:
            written[name] = onnx(model, paths[name], data=data)
    return written


def _export(model, directory, data, export_format, convert, task, class_names, version,
            verify, quantize, extra, refine=None) -> str:
    spec = _export_spec(model, data, task, class_names)
    preprocessing = _serving_preprocessing(data, spec.image_size)
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(
            f"Expected the model root {directory!r} to be a directory; it is a file.")
    os.makedirs(directory, exist_ok=True)
    _refuse_mixed_root(directory, export_format)
    version = _choose_version(directory, version)
    with staged_version(directory, version) as (staging_dir, version_dir):
        function = portable_function(model, spec.task, spec.image_size)
        model_path = os.path.join(staging_dir, MODEL_FILES[export_format])
        convert(function, spec, model_path)
        metadata = build_metadata(
            task=spec.task.name, input_shape=spec.input_shape, class_names=spec.class_names,
            version=version, model_name=model.name,
            data=data.describe() if data is not None else None,
            preprocessing=preprocessing.to_dict())
        metadata.update({
            "format": FORMAT_NAMES[export_format], "file": MODEL_FILES[export_format],
            "signatures": ["serving_default"],
            "input": {"name": INPUT_NAME, "dtype": "uint8",
                      "shape": [batch_size_for(spec.task), *spec.input_shape]},
            "batch_size": batch_size_for(spec.task),
            "resize": "outside: send uint8 pixels at input_size, resized with the "
                      "preprocessing block", **to_json_value(extra, "extra")})
        write_assets(staging_dir, spec.class_names, metadata)
        if verify:
            # A 98% top-1 bar on 16 images allows no disagreement at all: quantized
            # exports are checked on more images.
            images = verification_images(data, spec.image_size,
                                         CHECK_IMAGES if quantize in (None, "float16")
                                         else CHECK_IMAGES_QUANTIZED)
            truth = verification_truth(data, spec.task, len(images))
            expected = keras_outputs(model, spec.task, images, batch_size_for(spec.task))
            while True:
                metrics = check_against_model(PortablePredictor(staging_dir), model,
                                              spec.task, images, truth, expected=expected)
                failed = parity.failures(metrics, quantize)
                # int8: keep the worst-quantized tensors in float32, step by step, until
                # parity holds (`_SelectiveQuantization`).
                change = refine(model_path, metrics) if failed and refine else None
                if change is None:
                    break
                metadata.update(to_json_value(change, "extra"))
                write_assets(staging_dir, spec.class_names, metadata)
            if failed:
                measured = ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()
                                     if "latency" not in name)
                raise ExportVerificationError(
                    f"The {export_format} export ({quantize or 'float32'}) of {model.name!r} "
                    f"differs from the Keras model on {len(images)} "
                    f"images: {'; '.join(failed)} (measured: {measured}). Nothing was "
                    f"written.{_switch_hint(model, quantize)}")
            metadata["parity"] = {"images": len(images), **metrics}
            write_assets(staging_dir, spec.class_names, metadata)
    if metadata.get("float_layers"):
        layers = metadata["float_layers"]
        warnings.warn(
            f"The {quantize} {export_format} export of {model.name!r} keeps "
            f"{metadata['float_tensors']} of {metadata['quantized_tensors']} int8 tensors "
            f"in float32 (those that lost most precision: a scale shared with a wider "
            f"tensor, or the largest int8 error), in {len(layers)} layer(s): "
            f"{', '.join(layers[:5])}{', ...' if len(layers) > 5 else ''} (all listed "
            f"under 'float_layers' in visionkit.json): with every layer int8, parity with "
            f"the Keras model failed. The file is larger and slower than a full int8 "
            f"one.", stacklevel=3)
    return version_dir


def _switch_hint(model: keras.Model, quantize: str | None) -> str:
    """Why a model with max-unpooling switches (SegNet) misses quantized parity, or ""."""
    unpooling = [layer.name for layer in _all_layers(model)
                 if isinstance(layer, MaxUnpooling2D)]
    if not unpooling or quantize is None:
        return ""
    fallback = ("export float32 (quantize=None), or int8, which is held to the masks and "
                "the mIoU against the truth" if quantize == "float16"
                else "export float32 (quantize=None)")
    return (f" The model's MaxUnpooling2D layers ({', '.join(sorted(unpooling)[:4])}) put "
            f"each value back at its 2x2 window's maximum: where two values nearly tie, "
            f"the rounding of {quantize} moves it, and at a coarse decoder stage it moves a "
            f"block of output pixels (measured on a SegNet trained to mIoU 0.757: 0.02-0.04% "
            f"of the switches flipped by float16, probabilities within 1e-2 on 99.2% of the "
            f"pixels, masks equal on 99.96%, the same in Keras itself with float16-rounded "
            f"weights). This is the model's sensitivity, not a conversion fault: {fallback}.")


def _refuse_mixed_root(directory: str, export_format: str) -> None:
    """Refuses a model root whose versions hold another format (a SavedModel root).

    TensorFlow Serving loads the highest integer version of a root as a SavedModel, so a
    `.tflite` or `.onnx` version beside SavedModel versions breaks the served model.
    """
    from visionkit.export.runtimes import _format_in
    from visionkit.export.versions import _version_dirs

    for number, name in sorted(_version_dirs(directory).items()):
        found = _format_in(os.path.join(directory, name))
        if found is not None and found != export_format:
            raise ValueError(
                f"The model root {directory!r} already holds a {found} export (version "
                f"{number}); a {export_format} version there would be served as the latest "
                f"{found}. Export {export_format} to its own root, e.g. "
                f"{format_root(directory, export_format)!r} (vk.export.format_root).")


def verification_images(data: Data | None, image_size: Sequence[int],
                        count: int = CHECK_IMAGES) -> np.ndarray:
    """uint8 `[N, H, W, 3]`: the first `count` validation images of `data`, else seeded noise."""
    from visionkit.export.verify import VERIFY_SEED, _verification_images

    if data is not None and data.val_examples is not None and data.val_size:
        options = tf.data.Options()
        options.autotune.enabled = False
        images = [np.asarray(example["images"]) for example in
                  data.val_examples.take(count).with_options(options)]
        if images:
            return np.clip(np.round(np.stack(images)), 0, 255).astype(np.uint8)
    if data is not None:
        return _verification_images(data, tuple(image_size))
    rng = np.random.default_rng(VERIFY_SEED)
    return rng.integers(0, 256, size=(count, *image_size, 3), dtype=np.uint8)


def verification_truth(data: Data | None, task, count: int) -> Any:
    """The ground truth of `verification_images`' validation images, or None.

    Segmentation: int `[N, H, W]` masks; detection: one `{"boxes", "labels"}` dict per
    image (xyxy pixels, -1 padded). None for classification (top-1 agreement needs no
    truth), without validation images, or when they are not at the model's size.
    """
    if data is None or data.val_examples is None or not data.val_size:
        return None
    # Truth exists for the tasks whose targets are masks or boxes (their parity has an
    # accuracy to lose); class labels need none (top-1 agreement).
    key = get_task(task).target_key
    if key not in (SEGMENTATION_MASKS, BOUNDING_BOXES):
        return None
    options = tf.data.Options()
    options.autotune.enabled = False
    truth = []
    for example in data.val_examples.take(count).with_options(options):
        if key not in example:
            return None
        if key == SEGMENTATION_MASKS:
            truth.append(np.asarray(example[key]).reshape(np.shape(example["images"])[:2]))
        else:
            truth.append({field: np.asarray(value) for field, value in example[key].items()})
    return np.stack(truth) if key == SEGMENTATION_MASKS else truth


def keras_outputs(model: keras.Model, task, images: np.ndarray,
                  batch_size: int | None) -> dict[str, np.ndarray]:
    """The Keras model's served outputs on uint8 images at its size, batch by batch."""
    step = batch_size or 32
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), step):
        batch = images[start:start + step]
        for key, value in reference_outputs(model, task, batch, batch.shape[1:3]).items():
            parts.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in parts.items()}


def check_against_model(predictor, model: keras.Model, task, images: np.ndarray,
                        truth: Any = None,
                        expected: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Parity metrics and per-image latency of `predictor` against `model` on `images`
    (with `truth`, their ground truth, also both sides' task accuracy; with `expected`,
    the Keras model's outputs computed before, and no Keras latency)."""
    start = time.perf_counter()
    timed = expected is None
    if expected is None:
        expected = keras_outputs(model, task, images, batch_size_for(task))
    keras_ms = 1000 * (time.perf_counter() - start) / len(images) if timed else None
    predictor(images[:1])
    start = time.perf_counter()
    served = predictor(images)
    served_ms = 1000 * (time.perf_counter() - start) / len(images)
    metrics = parity.measure(task, expected, served, truth)
    latency = {"latency_ms": served_ms}
    if keras_ms is not None:
        latency["keras_latency_ms"] = keras_ms
    return {**metrics, **latency}


# -- LiteRT conversion -------------------------------------------------------------------
def _representative_images(data: Data, image_size, count: int, seed: int):
    options = tf.data.Options()
    options.autotune.enabled = False
    examples = data.train_examples.shuffle(max(4 * count, 64), seed=seed,
                                           reshuffle_each_iteration=False).take(count)
    images = [np.clip(np.round(np.asarray(example["images"])), 0, 255).astype(np.uint8)
              for example in examples.with_options(options)]
    if not images:
        raise ValueError("quantize='int8' needs training images to calibrate on; the data's "
                         "training split is empty.")
    return images


def _convert_litert(function, model, quantize, select_tf_ops, calibration=None,
                    debuggers: list | None = None) -> bytes:
    module = tf.Module()
    module.serve = function
    with tempfile.TemporaryDirectory(prefix="visionkit-litert-") as folder:
        # A SavedModel of the frozen graph gives the .tflite its `serving_default`
        # signature (converting the concrete function directly leaves it unnamed).
        tf.saved_model.save(module, folder,
                            signatures={"serving_default": function.get_concrete_function()},
                            options=tf.saved_model.SaveOptions(
                                experimental_custom_gradients=False))
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if select_tf_ops:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                                   tf.lite.OpsSet.SELECT_TF_OPS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            def representative():
                for image in calibration:
                    yield {INPUT_NAME: image[np.newaxis]}

            converter.representative_dataset = representative
        try:
            if quantize == "int8":
                return _convert_int8(converter, representative, debuggers)
            return converter.convert()
        except Exception as error:  # ConverterError and friends
            raise _conversion_error(model, error, quantize, select_tf_ops) from error


# Post-processing ops int8 exports keep in float32 (dequantized inputs): a softmax or
# sigmoid quantized to int8 has steps of 1/256, so an uncertain model's top classes tie
# and argmax picks the first (measured on a 2-epoch digits classifier: top-1 agreement
# with Keras 0.84 with every op quantized, 0.97 with these in float, on 32 images).
INT8_FLOAT_OPS = ("SOFTMAX", "LOGISTIC", "ARG_MAX", "ARG_MIN", "NON_MAX_SUPPRESSION_V4")


def _convert_int8(converter, representative, debuggers: list | None = None) -> bytes:
    """int8 weights and activations, calibrated, except `INT8_FLOAT_OPS` (TensorFlow's
    selective quantization through `tf.lite.experimental.QuantizationDebugger`; the
    debugger goes to `debuggers` for a per-layer error report if parity fails)."""
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(INT8_FLOAT_OPS))

    def debug_dataset():  # the debugger's own runs take a list of inputs, not a dict
        for sample in representative():
            yield list(sample.values())

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=debug_dataset, debug_options=options)
    if debuggers is not None:
        debuggers.append(debugger)
    return debugger.get_nondebug_quantized_model()


# Selective quantization (TensorFlow's quantization-debugger guide): when the int8 file
# fails parity, the tensors whose int8 error exceeds SENSITIVE_ERROR steps (root mean
# squared error / scale on the calibration images; rounding alone gives 0.29) stay in
# float32 first, then the worst 2x, 4x, ... of them, until parity holds or
# MAX_FLOAT_FRACTION of the int8 tensors would be float (then the export is refused).
SENSITIVE_ERROR = 0.7
MAX_FLOAT_FRACTION = 0.5


class _SelectiveQuantization:
    """Keeps the int8 ops that lose the most precision in float32, more each step.

    Ranks once, on the fully int8 model: first the ops that impose a shared scale
    coarser than an input's own range by `SHARED_SCALE_BITS` or more
    (`_shared_scale_losses`, worst first), then every tensor by
    `QuantizationDebugger`'s per-op error against the float model on the calibration
    images (root mean squared error / scale). The first step keeps in float32 the
    shared-scale ops and the tensors above `SENSITIVE_ERROR`; each further step twice
    as many of the ranked. Each step re-quantizes the calibrated model with them as
    `denylisted_nodes` (no new calibration).
    """

    def __init__(self, debuggers: list, model: keras.Model) -> None:
        self.debuggers = debuggers
        self.model = model
        self.float_count = 0
        self.tensor_count = 0
        self._ranked: list[tuple[float, tuple[str, ...], str, str]] | None = None
        self._first_step = 0

    def ranked(self) -> list[tuple[float, tuple[str, ...], str, str]]:
        """`(error, tensor names, op name, layer name)`, in the order they go float:
        shared-scale ops (error in bits lost), then the debugger's (in int8 steps)."""
        if self._ranked is None:
            import csv
            import io

            debugger = self.debuggers[0]
            layer_names = {layer.name for layer in _all_layers(self.model)}
            shared = _shared_scale_losses(debugger.calibrated_model,
                                          debugger.get_nondebug_quantized_model(),
                                          layer_names)
            debugger.run()
            buffer = io.StringIO()
            debugger.layer_statistics_dump(buffer)
            rows = []
            for row in csv.DictReader(io.StringIO(buffer.getvalue())):
                try:
                    error = float(row["mean_squared_error"]) ** 0.5 / float(row["scale"])
                except (KeyError, TypeError, ValueError, ZeroDivisionError):
                    continue
                if not np.isfinite(error):
                    continue
                tensor = row.get("tensor_name", "")
                rows.append((error, (tensor,), row.get("op_name", "?"),
                             _layer_of(tensor, layer_names)))
            rows.sort(key=lambda row: -row[0])
            names = {name for _, tensors, _, _ in shared for name in tensors}
            self._ranked = shared + [row for row in rows if row[1][0] not in names]
            self._first_step = len(shared) + sum(error > SENSITIVE_ERROR
                                                 for error, *_ in rows)
            self.tensor_count = len(rows)
            self.shared = shared
        return self._ranked

    def worst(self, count: int = 5) -> list[str]:
        """The `count` first-ranked as `"<op> in layer '<layer>' <error>"`."""
        try:
            ranked = self.ranked()
        except Exception as error:  # the report must not hide the parity failure
            return [f"(the per-layer report failed: {type(error).__name__}: {error})"]
        shared = len(self.shared)
        return [f"{op} in layer {layer!r} " + (
            f"{error:.1f} bits lost to a scale shared by {len(tensors)} tensors"
            if rank < shared else f"{error:.2f}")
                for rank, (error, tensors, op, layer) in enumerate(ranked[:count])
                ] or ["(none measured)"]

    def refine(self, path: str, metrics: dict[str, float]) -> dict[str, Any] | None:
        """Rewrites `path` with more ops in float32; None when no step is left."""
        ranked = self.ranked()
        limit = int(MAX_FLOAT_FRACTION * len(ranked))
        count = 2 * self.float_count if self.float_count else max(1, self._first_step)
        count = min(count, limit)
        if count <= self.float_count:
            return None
        self.float_count = count
        kept = ranked[:count]
        debugger = self.debuggers[0]
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(INT8_FLOAT_OPS),
            denylisted_nodes=[name for _, tensors, _, _ in kept for name in tensors])
        with open(path, "wb") as file:
            file.write(debugger.get_nondebug_quantized_model())
        layer_names = {layer.name for layer in _all_layers(self.model)}
        names = [name for _, tensors, _, _ in kept for name in tensors]
        return {"float_layers": list(dict.fromkeys(_layer_of(name, layer_names)
                                                   for name in names)),
                "float_tensors": len(names),
                "quantized_tensors": sum(len(tensors) for _, tensors, _, _ in ranked),
                "float_tensor_errors": {name: round(error, 3)
                                        for error, tensors, _, _ in kept
                                        for name in tensors}}


# A tensor whose int8 scale is at least 2**SHARED_SCALE_BITS times coarser than its own
# calibrated range needs had its scale imposed by an op that shares one scale among its
# inputs (a concatenation of tensors with different ranges; keras-cv's YOLOv8 head joins
# box logits and class scores, which the portable graph keeps apart: `head_predictions`).
SHARED_SCALE_BITS = 2


def _shared_scale_losses(calibrated: bytes, quantized: bytes,
                         layer_names: set[str]) -> list[tuple[float, tuple[str, ...], str, str]]:
    """`(bits lost, tensors, op, layer)` per group of tensors forced onto a coarser scale.

    Compares each int8 activation's scale in `quantized` with the range calibration
    measured for it in `calibrated` (min/max in the flatbuffer): its own range spans
    255 steps; a tensor given a shared, coarser scale spans `255 / 2**bits`. The
    quantizer gives one scale to every tensor joined by a scale-sharing op (a
    concatenation, the slices and reshapes around it), and keeps it for the neighbours of
    an op kept in float: the whole group must go to `denylisted_nodes` together.
    """
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(calibrated, 0)
    graph = model.Subgraphs(0)
    ranges = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        quantization = tensor.Quantization()
        if quantization is None or quantization.MinLength() == 0:
            continue
        low = min(float(np.min(quantization.MinAsNumpy())), 0.0)
        high = max(float(np.max(quantization.MaxAsNumpy())), 0.0)
        ranges[tensor.Name().decode()] = high - low
    interpreter = Interpreter(model_content=quantized)
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    # The op list is what TensorFlow's own QuantizationDebugger reads too.
    operations = interpreter._get_ops_details()
    producer = {index: op for op in operations for index in op["outputs"]}
    parent = {index: index for index in producer}

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def int8_scale(index: int) -> float | None:
        detail = tensors.get(index)
        if detail is None or detail["dtype"] != np.int8 or index not in producer:
            return None
        return detail["quantization"][0] or None

    for op in operations:
        for output in op["outputs"]:
            for index in op["inputs"]:
                if int8_scale(index) is not None and int8_scale(index) == int8_scale(output):
                    parent[root(index)] = root(output)
    groups: dict[int, list[int]] = {}
    for index in producer:
        if int8_scale(index) is not None:
            groups.setdefault(root(index), []).append(index)
    losses = []
    for members in groups.values():
        bits, worst = 0.0, members[0]
        for index in members:
            own = ranges.get(tensors[index]["name"])
            if own:
                lost = float(np.log2(255 * int8_scale(index) / own))
                if lost > bits:
                    bits, worst = lost, index
        if bits < SHARED_SCALE_BITS or len(members) < 2:
            continue
        names = tuple(tensors[index]["name"] for index in members)
        sharer = next((producer[index] for index in members
                       if producer[index]["op_name"] in ("CONCATENATION", "PACK")),
                      producer[worst])
        name = tensors[sharer["outputs"][0]]["name"]
        losses.append((bits, names, sharer["op_name"], _layer_of(name, layer_names)))
    return sorted(losses, key=lambda row: -row[0])


def _layer_of(tensor: str, layer_names: set[str]) -> str:
    """The Keras layer a converted tensor's name comes from (else the tensor's name).

    The converter names a fused tensor `<scope>/<layer>_1/<op>;<scope>/...`: the
    innermost layer of its first part, with Keras's call suffix `_1` stripped.
    """
    for part in reversed(re.split(r"[/:@]", tensor.split(";")[0])):
        if part in layer_names:
            return part
        if part.rsplit("_", 1)[0] in layer_names:
            return part.rsplit("_", 1)[0]
    return tensor


_OP_PATTERN = re.compile(r"'(tf\.[A-Za-z0-9_]+)'|\b(tf\.[A-Z][A-Za-z0-9_]+)\b")
_LOC_PATTERN = re.compile(r'loc\((?:fused\[)?"([^"]+)"')


def _conversion_error(model, error, quantize, select_tf_ops) -> LiteRTConversionError:
    message = str(error)
    ops = sorted({a or b for a, b in _OP_PATTERN.findall(message)})
    layer_names = {layer.name for layer in _all_layers(model)}
    layers = []
    for location in _LOC_PATTERN.findall(message):
        for part in re.split(r"[/@:]", location):
            if part in layer_names and part not in layers:
                layers.append(part)
    fallback = []
    if quantize is not None:
        fallback.append("quantize=None (float32)")
    if not select_tf_ops:
        fallback.append("select_tf_ops=True (needs TensorFlow's Flex delegate, not the "
                        "ai_edge_litert package)")
    fallback.append("vk.export.onnx or vk.export.saved_model")
    first = next((line for line in message.splitlines() if "error" in line.lower()),
                 message.splitlines()[0] if message else type(error).__name__)
    return LiteRTConversionError(
        f"LiteRT cannot convert the model {model.name!r}: op(s) {ops or ['unknown']} in "
        f"layer(s) {layers or ['unknown']} have no LiteRT builtin ({first.strip()}). "
        f"Fall back to: {'; or '.join(fallback)}.")


def _all_layers(model) -> list:
    layers, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        layers.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return layers
