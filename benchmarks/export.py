"""Per-image latency and file size of every export format, for four trained models, in one run.

Trains (briefly, on the embedded data: nothing is downloaded) a classifier (simple_cnn on
digits, 32x32), a U-Net and a SegNet (shapes segmentation, 64x64) and a YOLOv8 detector
(shapes detection, 64x64), exports each as a SavedModel, LiteRT float32, LiteRT int8
(calibrated on 100 training images, seed 0) and ONNX, checks every export's parity with
the Keras model (`vk.export.check` on the validation images), and times each runtime on
the same validation images: Keras (`model(x, training=False)` in a `tf.function`, batch
1), SavedModel `serving_default`, LiteRT (`ai_edge_litert`), ONNX Runtime, one image
per call, best of `--rounds` rounds. Ratios are against Keras in the same run.

    python benchmarks/export.py               # ~10 minutes on 2 cores
    python benchmarks/export.py --epochs 1    # quicker, worse models
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

MODELS = {
    # name: (builder, options, data source, task, image size, epochs factor)
    "classifier": ("simple_cnn", {"filters": (16, 32)}, "digits", "classification", (32, 32)),
    "unet": ("unet", {"depth": 3, "filters": 8}, "shapes", "segmentation", (64, 64)),
    "segnet": ("segnet", {"width_multiplier": 0.125}, "shapes", "segmentation", (64, 64)),
    "yolov8": ("yolov8", {}, "shapes", "detection", (64, 64)),
}


def train_models(epochs: int = 3, names=tuple(MODELS)):
    """`{name: (model, data)}` trained for `epochs` on the embedded data sets."""
    import visionkit as vk

    trained = {}
    for name in names:
        builder, options, source, task, size = MODELS[name]
        if source == "digits":
            data = vk.data.digits(image_size=size, batch_size=32)
        else:
            data = vk.data.shapes(task=task, n=320, image_size=size, batch_size=16)
        model = vk.models.build(builder, input_shape=(*size, 3),
                                num_classes=len(data.class_names), **options)
        vk.train.fit(model, data, epochs=epochs, run_dir=None, verbose=0)
        trained[name] = (model, data)
    return trained


def _per_image_ms(run, images, rounds: int) -> float:
    run(images[:1])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for index in range(len(images)):
            run(images[index:index + 1])
        best = min(best, (time.perf_counter() - start) / len(images))
    return 1000 * best


def _keras_runner(model):
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda images: forward(tf.constant(images, tf.float32))


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, file))
               for root, _, files in os.walk(path) for file in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    arguments = parser.parse_args()

    import visionkit as vk
    from visionkit.export.formats import verification_images
    from visionkit.export.parity import format_table

    print(f"load average: {os.getloadavg()}")
    root = tempfile.mkdtemp(prefix="visionkit-export-bench-")
    parity_rows, latency_rows = [], []
    for name, (model, data) in train_models(arguments.epochs, arguments.models).items():
        images = verification_images(data, data.image_size, arguments.images)
        base = os.path.join(root, name)
        exports = {}
        for label, export, options in (
                ("saved_model", vk.export.saved_model, {}),
                ("litert_f32", vk.export.litert, {}),
                ("litert_int8", vk.export.litert, {"quantize": "int8"}),
                ("onnx", vk.export.onnx, {})):
            start = time.perf_counter()
            try:
                exports[label] = export(model, f"{base}_{label}", data=data, **options)
            except Exception as error:  # report and go on: one run, every figure
                print(f"{name} {label}: FAILED: {type(error).__name__}: {error}")
                continue
            seconds = time.perf_counter() - start
            if label != "saved_model":
                report = vk.export.check(exports[label], model=model, images=images)
                parity_rows.append({"model": name, "format": label,
                                    **{k: v for k, v in report.items()
                                       if k not in ("path", "failures", "format",
                                                    "latency_ms", "reference_latency_ms")},
                                    "export_s": seconds})
        keras_ms = _per_image_ms(_keras_runner(model), images, arguments.rounds)
        row = {"model": name, "keras_ms": keras_ms}
        for label, path in exports.items():
            predictor = vk.export.load(path)
            ms = _per_image_ms(predictor, images, arguments.rounds)
            row[f"{label}_ms"] = ms
            row[f"{label}_x"] = keras_ms / ms
            row[f"{label}_MB"] = _size(path) / 1e6
        latency_rows.append(row)
    print("\nparity against the Keras model (validation images):")
    print(format_table(parity_rows))
    print("\nper-image latency (batch 1, best round) and size; _x = speed-up over Keras:")
    print(format_table(latency_rows))


if __name__ == "__main__":
    main()
