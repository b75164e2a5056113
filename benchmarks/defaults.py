"""Every registry model that fits the embedded data, trained at `vk.train.fit`'s defaults.

For each data set (digits 32x32; shapes classification, 2,048 images at 64x64; shapes
segmentation, 1,024 images; shapes detection, 4,000 images of 1-3 shapes in batches of
16, the data of pipelines/shapes_yolov8.yaml) and each registry model of
its task that builds for that input (models that refuse the input size or channels are
listed as skipped, with the builder's reason), this trains with `vk.train.fit(model,
data)` and nothing else: the task's epochs, learning rate, warmup and cosine schedule,
weight decay and augmentation preset come from `visionkit.train.defaults`, the loss from
the task (cross-entropy + Dice for segmentation), the models' depth from their input
(e.g. SegNet's 4 encoder stages at 64x64). Only the model's size is chosen here
(`MODEL_ARGS`: a 16-filter U-Net, SegNet-Basic)
so that it trains on a CPU. It prints one line per run and a Markdown table: accuracy
(classification), mean IoU (segmentation) or mAP@.5 (detection) on the validation split,
the epochs and the seconds per epoch (wall time of the whole `fit` call, evaluation
included, divided by the epochs; on a shared machine this depends on the load).

Usage: python benchmarks/defaults.py [--data digits shapes_classification ...]
                                     [--models simple_cnn lenet5 ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import visionkit as vk  # noqa: E402

# Model sizes that train on a CPU (everything else is the builder's default).
MODEL_ARGS = {"unet": {"filters": 16}, "segnet": {"variant": "basic"}}

# The score each task reports, as `run.metrics` names it.
SCORES = {"classification": "accuracy", "segmentation": "mean_iou", "detection": "map50"}


def embedded(name: str, seed: int = 0) -> vk.data.Data:
    """One of the benchmark's data sets."""
    if name == "digits":
        return vk.data.digits(image_size=(32, 32), seed=seed)
    task = name.removeprefix("shapes_")
    if task == "detection":
        return vk.data.shapes(task, n=4000, image_size=(64, 64), batch_size=16,
                              shapes_per_image=(1, 3), seed=seed)
    n = {"classification": 2048, "segmentation": 1024}[task]
    return vk.data.shapes(task, n=n, image_size=(64, 64), seed=seed)


DATA = ("digits", "shapes_classification", "shapes_segmentation", "shapes_detection")


def train_one(data: vk.data.Data, model_name: str, seed: int = 0) -> dict:
    """Trains `model_name` on `data` at fit's defaults; its score, epochs and s/epoch."""
    start = time.perf_counter()
    run = vk.train.fit(model_name, data, seed=seed, verbose=0,
                       model_kwargs=MODEL_ARGS.get(model_name, {}))
    seconds = time.perf_counter() - start
    epochs = len(run.history["loss"])
    score = SCORES[data.task.name]
    return {"model": model_name, "score_name": score, "score": float(run.metrics[score]),
            "epochs": epochs, "seconds_per_epoch": seconds / epochs,
            "parameters": run.model.count_params()}


def buildable(data: vk.data.Data, model_name: str) -> str | None:
    """None when the model builds for `data`'s input; otherwise the builder's reason."""
    try:
        vk.models.build(model_name, data.input_shape, data.num_classes,
                        **MODEL_ARGS.get(model_name, {}))
    except ValueError as error:
        return str(error).splitlines()[0]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--models", nargs="+", default=None,
                        help="registry names (default: every model of each data's task)")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    rows = []
    for data_name in arguments.data:
        data = embedded(data_name, arguments.seed)
        names = vk.models.available(data.task.name)
        if arguments.models:
            names = [name for name in names if name in arguments.models]
        for model_name in names:
            reason = buildable(data, model_name)
            if reason is not None:
                print(f"{data_name:22s} {model_name:20s} skipped: {reason}", flush=True)
                continue
            row = {"data": data_name, **train_one(data, model_name, arguments.seed)}
            rows.append(row)
            print(f"{data_name:22s} {model_name:20s} {row['score_name']} {row['score']:.3f} "
                  f"epochs {row['epochs']} {row['seconds_per_epoch']:.1f} s/epoch "
                  f"({row['parameters']:,} parameters)", flush=True)
    print("\n| data | model | parameters | score | epochs | s/epoch |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['data']} | {row['model']} | {row['parameters']:,} | "
              f"{row['score_name']} {row['score']:.3f} | {row['epochs']} | "
              f"{row['seconds_per_epoch']:.1f} |")


if __name__ == "__main__":
    main()
