"""Served bytes-to-prediction throughput: the one pixel path against the previous decode path.

Exports one classifier (simple_cnn) three ways and times `serve_bytes` on the same
encoded photos (JPEGs 640x480 with gradients, shapes and texture; every third one with
an EXIF orientation tag), loaded back with `tf.saved_model.load`, in one run:

- previous: the decode path before the shared `Preprocessing` spec (`tf.io.decode_image`
  with TensorFlow's default fast IDCT, no EXIF orientation, bilinear resize without
  antialiasing), rebuilt here as it was;
- parity: today's default spec (EXIF orientation read from the bytes in the graph,
  accurate IDCT, bilinear resize with antialiasing), the pixels training produced;
- parity + DCT: the same with `dct_scaling=True` (a data set built with it).

Each export is timed for `--rounds` interleaved rounds of `--batches` batches (after a
warm-up); the best round counts. Ratios are within this run; the machine's load shows
first, as other processes share the cores.

    python benchmarks/serving.py                 # 128x128 and 224x224
    python benchmarks/serving.py --batches 5     # quicker
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 16
SIZES = ((128, 128), (224, 224))
PHOTO_SIZE = (480, 640)
WARMUP = 2


def photos(count: int, seed: int = 0) -> list[bytes]:
    """`count` photo-like JPEGs (quality 90); every third carries EXIF orientation 6."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    height, width = PHOTO_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    files = []
    for index in range(count):
        base = np.stack([y / height * 255, x / width * 255,
                         128 + 100 * np.sin((x + y) / (30 + index))], -1)
        base += rng.normal(0, 12, base.shape)
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            top, left = rng.integers(0, height - 60), rng.integers(0, width - 60)
            draw.ellipse([left, top, left + rng.integers(20, 200), top + rng.integers(20, 200)],
                         fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        exif = Image.Exif()
        if index % 3 == 0:
            exif[0x0112] = 6
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90, exif=exif)
        files.append(buffer.getvalue())
    return files


class PreviousServing(tf.Module):
    """`serve_bytes` as visionkit exported it before the shared spec (for comparison)."""

    def __init__(self, model, image_size) -> None:
        super().__init__()
        self.model_variables = list(model.variables)
        height, width = image_size

        def decode_one(encoded):
            image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                                       expand_animations=False)
            image = tf.ensure_shape(image, [None, None, 3])
            resized = tf.image.resize(tf.cast(image, tf.float32), (height, width),
                                      method="bilinear", antialias=False)
            return resized, tf.shape(image)[:2]

        def serve(images):
            pixels, _ = tf.map_fn(decode_one, images, fn_output_signature=(
                tf.TensorSpec([height, width, 3], tf.float32), tf.TensorSpec([2], tf.int32)))
            probabilities = model(pixels, training=False)
            return {"probabilities": probabilities,
                    "class_id": tf.argmax(probabilities, -1, output_type=tf.int32)}

        self.serve_bytes = tf.function(
            serve, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)


def export_all(model, image_size, folder: str) -> dict[str, object]:
    """Loaded `serve_bytes` of the three exports."""
    import visionkit as vk
    from visionkit.data.preprocessing import Preprocessing
    from visionkit.export.signatures import ServingModule

    task = vk.tasks.get_task("classification")
    served = {}
    previous = PreviousServing(model, image_size)
    path = os.path.join(folder, "previous")
    tf.saved_model.save(previous, path, signatures={
        "serve_bytes": previous.serve_bytes.get_concrete_function()})
    served["previous"] = tf.saved_model.load(path).signatures["serve_bytes"]
    for name, spec in (("parity", Preprocessing(image_size)),
                       ("parity + DCT", Preprocessing(image_size, dct_scaling=True))):
        module = ServingModule(model, task, image_size, preprocessing=spec)
        path = os.path.join(folder, name.replace(" ", "").replace("+", "_"))
        tf.saved_model.save(module, path, signatures={
            "serve_bytes": module.serve_bytes.get_concrete_function()})
        served[name] = tf.saved_model.load(path).signatures["serve_bytes"]
    return served


def time_rounds(served: dict, batches: list[tf.Tensor], rounds: int) -> dict[str, float]:
    """Best images/s of each export over interleaved rounds."""
    best = dict.fromkeys(served, 0.0)
    for function in served.values():
        for batch in batches[:WARMUP]:
            function(images=batch)
    for _ in range(rounds):
        for name, function in served.items():
            start = time.perf_counter()
            for batch in batches:
                function(images=batch)["class_id"].numpy()
            rate = len(batches) * BATCH / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    import visionkit as vk

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores; batch {BATCH}, "
          f"{PHOTO_SIZE[1]}x{PHOTO_SIZE[0]} JPEGs")
    files = photos(arguments.batches * BATCH)
    batches = [tf.constant(files[i:i + BATCH]) for i in range(0, len(files), BATCH)]
    for image_size in SIZES:
        model = vk.models.build("simple_cnn", input_shape=(*image_size, 3), num_classes=10)
        with tempfile.TemporaryDirectory() as folder:
            served = export_all(model, image_size, folder)
            rates = time_rounds(served, batches, arguments.rounds)
        baseline = rates["previous"]
        print(f"\n{image_size[0]}x{image_size[1]}:")
        for name, rate in rates.items():
            print(f"  {name:<14} {rate:8.1f} images/s   {rate / baseline:5.2f}x previous")


if __name__ == "__main__":
    main()
