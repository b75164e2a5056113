"""Benchmark: the albumentations bridge in tf.data against a plain Python loop.

Both run the same `albumentations.Compose` (flip, affine warp, brightness/contrast) on
JPEG files resized to the target size, and produce float32 batches:

- bridge: a visionkit `Data` pipeline: paths shuffled, read + decode + resize in the
  graph, the Compose per image through `tf.numpy_function` (num_parallel_calls=AUTOTUNE),
  batch, prefetch, as `vk.data.image_folder` sets it up;
- python_loop: one process reading each file with OpenCV, resizing, applying the Compose
  and stacking the batches, the loop users write without tf.data.

Each figure runs one repeated dataset (or an endless loop) with a warm-up before the
clock, and `main` keeps the best of `--rounds` interleaved measurements. Ratios are
within one run; the machine's load shows first, since other processes
may share the cores.

    python benchmarks/albumentations_bridge.py                 # 300 images, 224x224
    python benchmarks/albumentations_bridge.py --images 100 --size 128
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from visionkit.data.pipeline import Data  # noqa: E402

# Batches run before the clock starts (tracing, thread start-up, autotuning).
WARMUP_BATCHES = 3


def compose() -> A.Compose:
    """The Compose both contenders run: a typical flip + warp + photometric chain."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), translate_percent=(-0.1, 0.1), p=1.0),
        A.RandomBrightnessContrast(p=0.5),
    ])


def write_images(root: str, count: int, seed: int = 0) -> list[str]:
    """`count` structured JPEGs (gradients, shapes, text-like lines), 320x240 to 640x480."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        width, height = int(rng.integers(320, 641)), int(rng.integers(240, 481))
        ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        pixels = (start + (end - start) * ramp) * np.ones((height, 1, 1), np.float32)
        image = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            size = int(rng.integers(20, min(width, height) // 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                draw.ellipse([x, y, x + size, y + size], fill=colour)
            else:
                draw.rectangle([x, y, x + size, y + size // 2], fill=colour)
        for line in range(int(rng.integers(3, 8))):
            y = 10 + line * 14
            draw.line([10, y, int(rng.integers(60, width - 10)), y], fill=(20, 20, 20), width=3)
        path = os.path.join(root, f"{index:05d}.jpg")
        image.save(path, quality=90)
        paths.append(path)
    return paths


def bridge_data(paths: list[str], image_size: tuple[int, int], batch_size: int,
                augment: A.Compose) -> Data:
    """A `Data` over the files (one class), decoded in the graph, augmented by the bridge."""
    height, width = image_size
    records = tf.data.Dataset.from_tensor_slices(
        {"path": np.asarray(paths), "label": np.zeros(len(paths), np.int32)})

    def decode(record: dict) -> dict:
        image = tf.io.decode_image(tf.io.read_file(record["path"]), channels=3,
                                   expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return {"images": tf.ensure_shape(image, [height, width, 3]), "labels": record["label"]}

    return Data(task="classification", class_names=("image",), image_size=image_size,
                train_examples=records.map(decode), val_examples=None, train_size=len(paths),
                val_size=0, batch_size=batch_size, augment=augment, seed=None,
                train_records=records, decode=decode)


def _rate(batches_iterator, batches: int, batch_size: int) -> tuple[float, float]:
    """`(images per second, CPU milliseconds per image of this process)`.

    CPU time per image is the steadier figure on a shared machine: it does not count
    the time other processes hold the cores.
    """
    for _ in range(WARMUP_BATCHES):
        next(batches_iterator)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(batches_iterator)
    images = batches * batch_size
    return (images / (time.perf_counter() - started),
            (time.process_time() - cpu_started) * 1e3 / images)


def python_loop(paths: list[str], image_size: tuple[int, int], batch_size: int,
                augment: A.Compose):
    """Endless batches `(images float32 [B,H,W,3], labels)` from a plain Python loop."""
    height, width = image_size
    files = itertools.cycle(paths)
    while True:
        images = []
        for path in itertools.islice(files, batch_size):
            image = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            images.append(augment(image=image)["image"].astype(np.float32))
        yield np.stack(images), np.zeros(batch_size, np.int32)


def measure(paths: list[str], image_size: tuple[int, int], batch_size: int,
            batches: int) -> dict:
    """Images per second of the bridge and of the plain Python loop, same Compose.

    Args:
        paths: image files (they are cycled through as often as needed).
        image_size: `(height, width)` the images are resized to before the Compose.
        batch_size: images per batch.
        batches: timed batches per contender (after a warm-up).

    Returns:
        `{"bridge": images_per_s, "python_loop": images_per_s}`.
    """
    figures = _measure_with_cpu(paths, image_size, batch_size, batches)
    return {key: figures[key][0] for key in ("bridge", "python_loop")}


def _measure_with_cpu(paths: list[str], image_size: tuple[int, int], batch_size: int,
                      batches: int) -> dict[str, tuple[float, float]]:
    image_size = (int(image_size[0]), int(image_size[1]))
    data = bridge_data(paths, image_size, batch_size, compose())
    bridge = _rate(iter(data.train.repeat()), batches, batch_size)
    loop = _rate(python_loop(paths, image_size, batch_size, compose()), batches, batch_size)
    return {"bridge": bridge, "python_loop": loop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="JPEGs to generate")
    parser.add_argument("--size", type=int, default=224, help="square target size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per figure")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved measurements (the best of each contender counts)")
    arguments = parser.parse_args(argv)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cores: {os.cpu_count()}; "
          f"OpenCV threads: {cv2.getNumThreads()}")
    root = tempfile.mkdtemp(prefix="visionkit_albumentations_")
    try:
        paths = write_images(root, arguments.images)
        size = (arguments.size, arguments.size)
        rounds = [_measure_with_cpu(paths, size, arguments.batch_size, arguments.batches)
                  for _ in range(max(1, arguments.rounds))]
        # The best round of each contender: images/s and its CPU ms per image.
        result = {key: max((r[key] for r in rounds), key=lambda figure: figure[0])
                  for key in rounds[0]}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{size[0]}x{size[1]}, batch {arguments.batch_size}, {arguments.images} JPEGs "
          f"320x240..640x480 (images/s):")
    (bridge, bridge_cpu), (loop, loop_cpu) = result["bridge"], result["python_loop"]
    print(f"  albumentations bridge (tf.data, parallel)  {bridge:8.0f}  "
          f"({bridge_cpu:.2f} CPU ms/image)")
    print(f"  albumentations in a Python loop            {loop:8.0f}  "
          f"({loop_cpu:.2f} CPU ms/image)")
    print(f"  ratio bridge / loop                        {bridge / loop:8.2f}x  "
          f"(CPU per image: loop / bridge {loop_cpu / bridge_cpu:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
