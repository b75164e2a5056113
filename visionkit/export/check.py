"""`check`: any visionkit export against the Keras model (or the SavedModel), as a table."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from visionkit.export import parity
from visionkit.vocabulary import get_task

if TYPE_CHECKING:
    import keras

    from visionkit.data.pipeline import Data

__all__ = ["check"]


def check(path: str | os.PathLike, model: keras.Model | None = None,
          data: Data | None = None, reference: str | os.PathLike | None = None,
          images: np.ndarray | None = None) -> dict[str, Any]:
    """Loads an export in its own runtime and measures its parity with a reference.

    The same uint8 images at the export's input size (the first
    `visionkit.export.formats.CHECK_IMAGES` validation images of `data`, 100 for
    dynamic-range and int8 exports, else `images`,
    else seeded random pixels) go through the export and through the Keras `model`
    (or, without a model, the SavedModel at `reference`); see
    `visionkit.export.parity` for the metrics and their thresholds. Validation images
    of `data` bring their masks or boxes, so quantized exports are also held to the
    task's accuracy of the Keras model (mIoU / mAP50 within 2 points).

    Args:
        path: a version directory, model root or model file of any format.
        model: the Keras model it was exported from. Defaults to None.
        data: its data set (validation images). Defaults to None.
        reference: a SavedModel export to compare with when `model` is None.
            Defaults to None.
        images: uint8 `[N, H, W, 3]` to use instead. Defaults to None.

    Returns:
        A dict: `path`, `format`, `quantization`, `images` (count), the task's parity
        metrics, `latency_ms` (export) and `reference_latency_ms` per image, `passed`
        (bool) and `failures` (sentences).

    Raises:
        ValueError: if neither `model` nor `reference` is given.

    Example:

    >>> import tempfile, visionkit as vk
    >>> model = vk.models.build("simple_cnn", input_shape=(16, 16, 3), num_classes=2,
    ...                         filters=(4,))
    >>> path = vk.export.onnx(model, tempfile.mkdtemp(), task="classification",
    ...                       class_names=["a", "b"])
    >>> vk.export.check(path, model=model)["passed"]
    True
    """
    from visionkit.export.formats import (
        CHECK_IMAGES,
        CHECK_IMAGES_QUANTIZED,
        keras_outputs,
        verification_images,
        verification_truth,
    )
    from visionkit.export.loader import load
    from visionkit.export.portable import batch_size_for

    predictor = load(path)
    if model is None and reference is None:
        raise ValueError("Expected the Keras model (model=) or a SavedModel export "
                         "(reference=) to compare the export with; received neither.")
    task = get_task(predictor.task)
    size = tuple(predictor.input_size[:2])
    quantization = predictor.metadata.get("quantization", "float32")
    truth = None
    if images is None:
        truth = verification_truth(data, task, CHECK_IMAGES if quantization in (
            "float32", "float16") else CHECK_IMAGES_QUANTIZED)
        images = verification_images(data, size, CHECK_IMAGES if quantization in (
            "float32", "float16") else CHECK_IMAGES_QUANTIZED)
    images = np.asarray(images, np.uint8)
    start = time.perf_counter()
    if model is not None:
        expected = keras_outputs(model, task, images, batch_size_for(task))
    else:
        expected = load(reference)(images)
    reference_ms = 1000 * (time.perf_counter() - start) / len(images)
    predictor(images[:1])
    start = time.perf_counter()
    served = predictor(images)
    latency = 1000 * (time.perf_counter() - start) / len(images)
    if "image_size" in expected:  # the input size a reference serves (segmentation)
        served.setdefault("image_size", expected["image_size"])
    if truth is not None and len(truth) != len(images):
        truth = None
    metrics = parity.measure(task, expected, served, truth)
    failed = parity.failures(metrics, None if quantization == "float32" else quantization)
    return {"path": predictor.path, "format": getattr(predictor, "format", "saved_model"),
            "quantization": quantization, "images": len(images), **metrics,
            "latency_ms": latency, "reference_latency_ms": reference_ms,
            "passed": not failed, "failures": failed}
