"""Per-image latency and file size of every export format, for four trained models, in one run.

Trains on the embedded data (nothing is downloaded) a classifier (simple_cnn on digits,
32x32), a U-Net and a SegNet (shapes segmentation, 64x64) and a YOLOv8 detector (shapes
detection, 64x64) with fit's defaults for each model's epochs (`MODELS`), exports each as
a SavedModel, LiteRT float32, float16, dynamic-range int8 and int8 (calibrated on 100 training images, seed
0) and ONNX, reports the parity check each export passed before it was written
(validation images with their truth, from its `visionkit.json`), and times each runtime on the same validation
images: Keras (`model(x, training=False)` in a `tf.function`, batch 1), SavedModel
`serving_default`, LiteRT (`ai_edge_litert`), ONNX Runtime, one image per call, best of
`--rounds` rounds. Ratios are against Keras in the same run.

    python benchmarks/export.py                      # trains: ~3 hours on 2 busy cores
    python benchmarks/export.py --models-dir /tmp/m  # trains once, then reuses the models
    python benchmarks/export.py --epochs 1           # quicker, worse models

Measured for the SegNet (val mIoU 0.757; `--models segnet`, load average 11 on 2 cores):
LiteRT float32 and ONNX probabilities within 4e-6, masks 1.0; float16 refused (within
1e-2 on 99.21% of pixels, < 99.9%; masks 0.9996); int8 pixels 0.9925, mIoU against the
truth 0.7470 vs Keras's 0.7466, all layers int8. Per image: Keras 22.8 ms, SavedModel
34.6 ms (5.3 MB), LiteRT float32 82.5 ms (3.9 MB), int8 34.3 ms (1.0 MB), ONNX Runtime
37.4 ms (3.9 MB).

Measured for the YOLOv8 (`--models yolov8 --models-dir`, the best checkpoint, epoch 15 of
20, of its training run: val mAP50 0.590; load average 3.3, 621 s in all): LiteRT float32,
float16 and ONNX detections mAP50 1.0 against Keras's own on 16 validation images (0.549
against the truth, as Keras); on 100 images dynamic-range int8 mAP50 0.935 against
Keras's own, 0.566 against the truth vs Keras's 0.569, and int8 0.797 and 0.556 (37 of
221 int8 tensors in float32 by selective quantization, with the head's box logits and
class scores kept apart; fully int8 0.047). Per image: Keras 23.2 ms, SavedModel 42.3 ms
(18.8 MB), LiteRT float32 7.8 ms (13.8 MB), float16 6.5 ms (7.0 MB), dynamic 6.4 ms
(3.6 MB), int8 3.2 ms (3.8 MB), ONNX Runtime 21.6 ms (13.8 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

MODELS = {
    # name: (builder, options, data source, task, image size, data options, fit options)
    # The shipped recipes' models at the benchmark's small sizes, trained with fit's
    # defaults (Adam, warmup + cosine, light augmentation) for the epochs given.
    "classifier": ("simple_cnn", {"filters": (32, 64, 128)}, "digits", "classification",
                   (32, 32), {"batch_size": 32}, {"epochs": 15, "learning_rate": 0.002}),
    "unet": ("unet", {"depth": 3, "filters": 8}, "shapes", "segmentation", (64, 64),
             {"n": 1280, "batch_size": 16}, {"epochs": 20}),
    # pipelines/shapes_segnet.yaml's SegNet and data (its encoder depth given
    # explicitly), in batches of 8: four times the steps of the recipe's 32 on the same
    # images, which a short SegNet run needs (visionkit.train.defaults).
    "segnet": ("segnet", {"width_multiplier": 0.25, "stages": 4}, "shapes", "segmentation",
               (64, 64), {"n": 1536, "batch_size": 8}, {"epochs": 16}),
    # The data and seed of pipelines/shapes_yolov8.yaml and of tests/train/
    # test_defaults_slow.py's YOLOv8 (4,000 images, batch 16, 1-3 shapes; fit's 20
    # epochs of Adam 2e-3 with warmup and cosine decay; validation mAP50 0.597 there).
    "yolov8": ("yolov8", {"backbone": "yolo_v8_xs", "fpn_depth": 1}, "shapes", "detection",
               (64, 64), {"n": 4000, "batch_size": 16, "shapes_per_image": (1, 3), "seed": 0},
               {"seed": 0}),
}


def make_data(name: str):
    """The embedded data set `name` trains on (seeded: the same images every time)."""
    import visionkit as vk

    _, _, source, task, size, data_options, _ = MODELS[name]
    if source == "digits":
        return vk.data.digits(image_size=size, **data_options)
    return vk.data.shapes(task=task, image_size=size, **data_options)


def train_models(epochs: int | None = None, names=tuple(MODELS),
                 cache_dir: str | None = None):
    """`{name: (model, data)}` trained on the embedded data sets.

    Args:
        epochs: overrides each model's epochs (`MODELS`). Defaults to None.
        names: the models. Defaults to all four.
        cache_dir: a folder of `<name>.keras` files: a model found there is loaded
            instead of trained, one trained is saved there. Defaults to None.
    """
    import keras

    import visionkit as vk

    trained = {}
    for name in names:
        builder, options, _, _, _, _, fit_options = MODELS[name]
        data = make_data(name)
        cached = os.path.join(cache_dir, f"{name}.keras") if cache_dir else None
        if cached and os.path.exists(cached):
            trained[name] = (keras.models.load_model(cached), data)
            continue
        fit_options = {**fit_options, **({"epochs": epochs} if epochs else {})}
        # Built by fit from its name, after fit seeds Keras (`seed` in `fit_options`).
        run = vk.train.fit(builder, data, run_dir=None, verbose=0, plots=False,
                           model_kwargs=options, **fit_options)
        if cached:
            os.makedirs(cache_dir, exist_ok=True)
            run.model.save(cached)
        trained[name] = (run.model, data)
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
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every model's epochs (MODELS)")
    parser.add_argument("--models-dir", default=None,
                        help="load <name>.keras from here instead of training (trained "
                             "models are saved there)")
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
    trained = train_models(arguments.epochs, arguments.models, arguments.models_dir)
    for name, (model, data) in trained.items():
        images = verification_images(data, data.image_size, arguments.images)
        base = os.path.join(root, name)
        exports = {}
        for label, export, options in (
                ("saved_model", vk.export.saved_model, {}),
                ("litert_f32", vk.export.litert, {}),
                ("litert_f16", vk.export.litert, {"quantize": "float16"}),
                ("litert_dyn", vk.export.litert, {"quantize": "dynamic"}),
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
                # The parity check the export passed before it was written (validation
                # images of `data` with their truth), as recorded in its metadata.
                with open(os.path.join(exports[label], "visionkit.json")) as file:
                    metadata = json.load(file)
                parity_rows.append({"model": name, "format": label,
                                    **{k: v for k, v in metadata["parity"].items()
                                       if "latency" not in k},
                                    "float_tensors": metadata.get("float_tensors", 0),
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
