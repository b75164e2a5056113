"""Input pipeline throughput: visionkit's presets against the raw limit and Keras's usual path.

Writes its own folder of JPEGs into a temporary directory (photos-like structure: gradients,
shapes and text-like lines, sizes between 320x240 and 640x480, four classes), then prints
images/s at 224x224 and 128x128, batch 32, for:

- raw limit: a tight tf.data map (read + decode + resize) on all cores;
- Keras baseline: `keras.utils.image_dataset_from_directory` + prefetch, without and with
  the usual Keras augmentation layers (RandomFlip, RandomRotation, RandomZoom,
  RandomContrast) mapped over the batches;
- visionkit `image_folder` without augmentation, with "standard" (crop fused into decoding),
  and with "geometric" (one composed warp) against the separate Keras layers doing the
  same transforms in the same pipeline;
- the cache: epoch 1 against epoch 2;
- the albumentations bridge (benchmarks/albumentations_bridge.py), when present.

Every measurement runs one repeated dataset with explicit steps (a warm-up, then timed
batches) so that no iterator is deleted inside the clock (PITFALLS.md), and each pipeline
keeps the best of `--rounds` interleaved measurements. Ratios are within this run. The
machine's load shows first: other processes share the cores.

    python benchmarks/pipeline.py              # 2,000 images
    python benchmarks/pipeline.py --images 400 # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 32
SIZES = ((224, 224), (128, 128))
CLASSES = ("ellipses", "rectangles", "triangles", "lines")
WARMUP = 3


def write_images(root: str, count: int, seed: int = 0) -> list[str]:
    """`count` JPEGs with structure (not noise) in one folder per class; returns paths."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        label = CLASSES[index % len(CLASSES)]
        width = int(rng.integers(320, 641))
        height = int(rng.integers(240, 481))
        # A smooth two-colour gradient background.
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        pixels = (start[None, None] * (1 - t[..., None]) + end[None, None] * t[..., None])
        image = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            x1 = x0 + int(rng.integers(30, max(31, width // 2)))
            y1 = y0 + int(rng.integers(30, max(31, height // 2)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            if label == "ellipses":
                draw.ellipse([x0, y0, x1, y1], fill=colour)
            elif label == "rectangles":
                draw.rectangle([x0, y0, x1, y1], fill=colour)
            elif label == "triangles":
                draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
            else:
                draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(3, 12)))
        # Text-like lines: rows of short dark dashes.
        top = int(rng.integers(0, height // 2))
        for row in range(int(rng.integers(2, 7))):
            y = top + row * 14
            x = int(rng.integers(5, 60))
            while x < width - 40 and y < height - 5:
                word = int(rng.integers(8, 40))
                draw.line([x, y, x + word, y], fill=(20, 20, 20), width=3)
                x += word + int(rng.integers(5, 12))
        folder = os.path.join(root, label)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{index:05d}.jpg")
        image.save(path, quality=90)
        paths.append(path)
    return paths


def measure(dataset: tf.data.Dataset, batches: int) -> tuple[float, float]:
    """(images/s, CPU ms of this process per image) over `batches` batches of one
    repeated dataset, after a warm-up. CPU time per image hardly depends on what other
    processes do, so it is the steadier figure on a shared machine."""
    iterator = iter(dataset.repeat())
    for _ in range(WARMUP):
        next(iterator)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    del iterator
    return batches * BATCH / elapsed, 1000.0 * cpu / (batches * BATCH)


def rate(dataset: tf.data.Dataset, batches: int) -> float:
    """Images/s (see `measure`)."""
    return measure(dataset, batches)[0]


def raw_limit(paths: list[str], size: tuple[int, int]) -> tf.data.Dataset:
    """The tight tf.data baseline: read + decode + resize, parallel, unordered."""
    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, size)

    dataset = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def keras_layers(geometric_only: bool = False):
    import keras

    # Keras's default border (mirrored), as the presets' for classification.
    layers = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
              keras.layers.RandomZoom(0.1)]
    if geometric_only:
        return layers + [keras.layers.RandomTranslation(0.1, 0.1)]
    return layers + [keras.layers.RandomContrast(0.2, value_range=(0, 255))]


def fused_jitter():
    """The per-image part of "standard" (flip, brightness, contrast) on whole batches."""
    from visionkit.data.augment import STANDARD_FLIP_AND_JITTER

    def apply(batch: dict) -> dict:
        return STANDARD_FLIP_AND_JITTER(batch, tf.random.uniform([2], 0, 2**31 - 1, tf.int64))

    return apply


def keras_jitter():
    """The Keras layers doing what `fused_jitter` does."""
    import keras

    return [keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomBrightness(0.1, value_range=(0, 255)),
            keras.layers.RandomContrast(0.2, value_range=(0, 255))]


def keras_baseline(root: str, size: tuple[int, int], augment: bool) -> tf.data.Dataset:
    """What a Keras user writes: the directory loader, prefetch, augmentation layers."""
    import keras

    dataset = keras.utils.image_dataset_from_directory(
        root, image_size=size, batch_size=BATCH, shuffle=True, seed=0, verbose=False)
    if augment:
        layers = keras_layers()

        def apply(images, labels):
            for layer in layers:
                images = layer(images, training=True)
            return images, labels

        dataset = dataset.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def cache_epochs(root: str, size: tuple[int, int]) -> tuple[float, float]:
    """Images/s of epoch 1 (decoding into the cache) and epoch 2 (from the cache)."""
    import visionkit as vk

    data = quietly(vk.data.image_folder, root, image_size=size, batch_size=BATCH,
                   validation_split=0.0, cache=True)
    steps = data.steps_per_epoch
    iterator = iter(data.train.repeat())
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(steps):
            next(iterator)
        timings.append(time.perf_counter() - start)
    del iterator
    return data.train_size / timings[0], data.train_size / timings[1]


def quietly(function, *args, **kwargs):
    """Runs `function` with stdout silenced (the file check's progress bar)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return function(*args, **kwargs)


def run_size(root: str, paths: list[str], size: tuple[int, int], batches: int, rounds: int,
             measure_bridge) -> dict[str, float]:
    """Prints (and returns) the figures at one image size.

    Every pipeline is measured `rounds` times, interleaved with the others, and keeps its
    best figure: other processes on the machine slow down whichever runs at the time.
    """
    import visionkit as vk
    from visionkit.data.augment import preset_layers

    data = quietly(vk.data.image_folder, root, image_size=size, batch_size=BATCH,
                   validation_split=0.0)
    data = dataclasses.replace(data, deterministic=False)
    raw = "raw limit"
    pipelines = {
        raw: ("raw limit (tf.data read+decode+resize)", lambda: raw_limit(paths, size)),
        "keras": ("keras loader, no augmentation", lambda: keras_baseline(root, size, False)),
        "keras augmented": ("keras loader + Flip/Rotation/Zoom/Contrast",
                            lambda: keras_baseline(root, size, True)),
        "visionkit": ("visionkit, no augmentation", lambda: data.train),
        "standard": ('visionkit "standard" (crop fused into decoding)',
                     lambda: data.with_augmentation("standard").train),
        "geometric": ('visionkit "geometric" (one composed warp)',
                      lambda: data.with_augmentation("geometric").train),
        "keras chain": ("visionkit + Keras Flip/Rotation/Zoom/Translation",
                        lambda: data.with_augmentation(preset_layers("geometric")).train),
        "light": ('visionkit "light" (flip + translation, one warp)',
                  lambda: data.with_augmentation("light").train),
        "keras light": ("visionkit + Keras Flip/Translation",
                        lambda: data.with_augmentation(preset_layers("light")).train),
        "jitter": ("visionkit flip + brightness + contrast (fused)",
                   lambda: data.with_augmentation(fused_jitter()).train),
        "keras jitter": ("visionkit + Keras Flip/Brightness/Contrast",
                         lambda: data.with_augmentation(keras_jitter()).train),
    }
    figures = {key: 0.0 for key in pipelines}
    cpu = {key: float("inf") for key in pipelines}
    for _ in range(rounds):
        for key, (_, build) in pipelines.items():
            images_per_second, cpu_ms = measure(build(), batches)
            figures[key] = max(figures[key], images_per_second)
            cpu[key] = min(cpu[key], cpu_ms)
    print(f"  {'':<48} {'images/s':>8}  {'CPU ms/image':>12}")

    def show(key: str, label: str, ratio_to: str | None = None) -> None:
        note = f"  ({figures[key] / figures[ratio_to]:.2f}x {ratio_to})" if ratio_to else ""
        cpu_note = f"{cpu[key]:>12.3f}" if key in cpu else " " * 12
        print(f"  {label:<48} {figures[key]:>8.0f}  {cpu_note}{note}", flush=True)

    for key, (label, _) in pipelines.items():
        show(key, label, None if key == raw else raw)
    print(f"  standard / raw limit in CPU per image: {cpu[raw] / cpu['standard']:.2f}x; "
          f"standard vs keras loader + its augmentation: "
          f"{figures['standard'] / figures['keras augmented']:.2f}x")
    print(f"  geometric, one warp vs the separate Keras layers: "
          f"{figures['geometric'] / figures['keras chain']:.2f}x "
          f"(CPU per image: {cpu['keras chain'] / cpu['geometric']:.2f}x)")
    print(f"  light, one warp vs Keras Flip + Translation: "
          f"{figures['light'] / figures['keras light']:.2f}x "
          f"(CPU per image: {cpu['keras light'] / cpu['light']:.2f}x)")
    print(f"  flip + brightness + contrast, fused vs the Keras layers: "
          f"{figures['jitter'] / figures['keras jitter']:.2f}x "
          f"(CPU per image: {cpu['keras jitter'] / cpu['jitter']:.2f}x)")
    first, second = cache_epochs(root, size)
    figures.update({"epoch 1": first, "epoch 2": second})
    show("epoch 1", "cache=True, epoch 1 (decodes)")
    show("epoch 2", "cache=True, epoch 2 (from the cache)", "epoch 1")
    if measure_bridge is None:
        print("  albumentations bridge: not available")
    else:
        try:
            bridge = measure_bridge(paths, size, BATCH, batches)
        except Exception as error:  # noqa: BLE001  (a broken bridge must not hide the rest)
            print(f"  albumentations bridge: failed ({type(error).__name__}: "
                  f"{str(error).strip().splitlines()[-1][:120]})")
            return figures
        figures.update({"bridge": bridge["bridge"], "python loop": bridge["python_loop"]})
        print(f"  {'albumentations bridge':<48} {bridge['bridge']:>8.0f}")
        print(f"  {'albumentations in a Python loop':<48} {bridge['python_loop']:>8.0f}"
              f"  (bridge {bridge['bridge'] / bridge['python_loop']:.2f}x)")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEGs to generate")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per figure")
    parser.add_argument("--rounds", type=int, default=2,
                        help="measurements per pipeline (the best one counts)")
    arguments = parser.parse_args(argv)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cores: {os.cpu_count()}")
    root = tempfile.mkdtemp(prefix="visionkit_bench_")
    try:
        started = time.perf_counter()
        paths = write_images(root, arguments.images)
        print(f"wrote {len(paths)} JPEGs (320x240 .. 640x480) in "
              f"{time.perf_counter() - started:.0f} s\n")
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from albumentations_bridge import measure as measure_bridge
        except ImportError:
            measure_bridge = None
        for size in SIZES:
            print(f"== {size[0]}x{size[1]}, batch {BATCH} (images/s) ==")
            run_size(root, paths, size, arguments.batches, arguments.rounds, measure_bridge)
            print()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
