"""Throughput of `vk.train.fit` against plain `model.fit` on the same model and data.

Both runs train the same simple_cnn from the same initial weights on the same digits
pipeline (one repeated dataset, the same steps, the same validation), alternating A/B
several times in one process. A timing callback measures the training loop itself
(`on_train_begin` to `on_train_end`), so the ratio shows what visionkit's defaults and
callbacks (CSV log, best checkpoint, BackupAndRestore, TensorBoard, TerminateOnNaN) cost.
The whole call, including visionkit's final evaluation and plots, is reported too.

`vk.train.fit` runs twice per repeat: with its defaults, which add the task's "light"
augmentation (flip and translation) to the pipeline, work plain `model.fit` does not do;
and with `augment="none"`, the same work as plain `model.fit`, whose ratio is the loop's
own overhead (target >= 0.95).

The callbacks cost a fixed time per epoch, so the ratio depends on how long an epoch
takes (at 64x64 about 2.5 s on a quiet 2-core machine; at 32x32 about 1 s). Measured per
epoch for this 1M-parameter CNN with Adam (CPU time): Keras's best-only `.keras`
checkpoint 256 ms when the monitored value improves (every epoch early in a run), the
epoch backup 180 ms when Keras writes it as HDF5 on the training thread, TensorBoard
scalars 4 ms, the CSV log and per-batch callbacks under 1 ms. visionkit now copies the
variables on the training thread and writes both the backup and the best checkpoint in
the background (`visionkit.train.background_save`, `visionkit.train.resume`), the
checkpoint only when the monitored value improves.

Usage: python benchmarks/train.py [--epochs 6] [--repeats 3] [--image-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import visionkit as vk  # noqa: E402


class LoopTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


def plain_fit(model, data, epochs):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    timer = LoopTimer()
    start = time.perf_counter()
    model.fit(data.train.repeat(), epochs=epochs, steps_per_epoch=data.steps_per_epoch,
              validation_data=data.val.repeat(), validation_steps=data.validation_steps,
              callbacks=[timer], verbose=0, shuffle=False)
    return timer.seconds, time.perf_counter() - start


def visionkit_fit(model, data, epochs, run_dir, **options):
    timer = LoopTimer()
    start = time.perf_counter()
    vk.train.fit(model, data, epochs=epochs, run_dir=run_dir, callbacks=[timer], verbose=0,
                 metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                 **options)
    return timer.seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    arguments = parser.parse_args()

    data = vk.data.digits(image_size=(arguments.image_size,) * 2, batch_size=32, seed=0)
    reference = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    weights = reference.get_weights()
    images = arguments.epochs * data.steps_per_epoch * data.batch_size

    def fresh():
        model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
        model.set_weights(weights)
        return model

    plain_loop, plain_total, vk_loop, vk_total, same_loop = [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(arguments.repeats):
            loop, total = plain_fit(fresh(), data, arguments.epochs)
            plain_loop.append(loop)
            plain_total.append(total)
            loop, total = visionkit_fit(fresh(), data, arguments.epochs,
                                        os.path.join(folder, f"run{repeat}"))
            vk_loop.append(loop)
            vk_total.append(total)
            loop, _ = visionkit_fit(fresh(), data, arguments.epochs,
                                    os.path.join(folder, f"same{repeat}"), augment="none")
            same_loop.append(loop)

    plain_rate = images / statistics.median(plain_loop)
    vk_rate = images / statistics.median(vk_loop)
    same_rate = images / statistics.median(same_loop)
    print(f"digits {arguments.image_size}x{arguments.image_size}, simple_cnn, batch 32, "
          f"{arguments.epochs} epochs x {data.steps_per_epoch} steps, median of "
          f"{arguments.repeats} alternating runs")
    print(f"plain model.fit      : {plain_rate:8.0f} images/s (training loop)")
    print(f"vk.train.fit         : {vk_rate:8.0f} images/s (training loop, all callbacks, "
          "default augmentation)")
    print(f"vk.train.fit, none   : {same_rate:8.0f} images/s (the same, augment='none': "
          "plain fit's work)")
    print(f"ratio vk / plain     : {vk_rate / plain_rate:8.3f}  (with the default augmentation)")
    print(f"ratio vk none / plain: {same_rate / plain_rate:8.3f}  (the loop's overhead; "
          "target >= 0.95)")
    print("loop seconds (plain, vk, vk none): "
          f"{[round(x, 2) for x in plain_loop]} {[round(x, 2) for x in vk_loop]} "
          f"{[round(x, 2) for x in same_loop]}")
    print(f"whole call, plain    : {statistics.median(plain_total):8.2f} s")
    print(f"whole call, vk       : {statistics.median(vk_total):8.2f} s (adds final evaluation, "
          "metrics.json and plots)")


if __name__ == "__main__":
    main()
