"""Why a SegNet's float16 export misses "within 1e-2": max-unpooling switches that flip.

Runs the export benchmark's trained SegNet (`benchmarks/export.py` `MODELS["segnet"]`,
loaded from `--models-dir`) in Keras on 16 validation images twice, with its float32
weights and with the same weights rounded to float16, and reports per `MaxUnpooling2D`
layer the share of its 2x2 pooling windows (per channel) whose switch (the window's
first maximum) differs between the two, and where the pixels whose probabilities differ
by more than 1e-2 lie. Then the rounded model runs again with the float32 model's
switches forced into every unpooling layer: what is left is the rounding alone.

    python benchmarks/segnet_float16_switches.py --models-dir /tmp/models

Measured on the SegNet trained to val mIoU 0.757 (width 0.25, 4 stages; 16 images, 64x64):
float16-rounded weights put 99.263% of the pixels within 1e-2 (483 of 65,536 beyond;
largest difference 0.27; masks equal on 99.965%). Switches flipped: 0.058%, 0.058%,
0.076% and 0.047% of the windows x channels at decoder4 ... decoder1 (19, 38, 100, 124
of them; median float32 gap between the window's top two values 1.7e-4 to 3.4e-4). The
flipped windows' own footprints (16, 8, 4, 2 px squares) hold only 16.6% of the >1e-2
pixels: the later convolutions spread the moved value. With the float32 switches forced,
the rounded model is within 1e-2 on 100% of the pixels (largest difference 0.0041): every
pixel beyond 1e-2 comes from a flipped switch, none from the rounding of the arithmetic.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from visionkit.export.formats import verification_images  # noqa: E402
from visionkit.models.layers.max_unpooling import (  # noqa: E402
    POOL_SIZE,
    MaxUnpooling2D,
    max_pool_switches,
)

IMAGES = 16
TOLERANCE = 1e-2


def _benchmark():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export.py")
    spec = importlib.util.spec_from_file_location("export_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _window_values(features: np.ndarray) -> np.ndarray:
    """`[B, H/2, W/2, C, 4]` the values of each 2x2 window, sorted ascending."""
    batch, height, width, channels = features.shape
    windows = features.reshape(batch, height // 2, 2, width // 2, 2, channels)
    windows = windows.transpose(0, 1, 3, 5, 2, 4).reshape(batch, height // 2, width // 2,
                                                          channels, 4)
    return np.sort(windows, axis=-1)


def _forced_call(switches: dict[str, tf.Tensor]):
    """`MaxUnpooling2D.call` with each layer's switches taken from `switches`."""
    def call(self, inputs):
        values, features = inputs
        placed = tf.cast(switches[self.name], values.dtype) * values[..., tf.newaxis]
        shape = tf.shape(placed)
        placed = tf.reshape(placed, [shape[0], shape[1], shape[2], shape[3], POOL_SIZE,
                                     POOL_SIZE])
        placed = tf.transpose(placed, [0, 1, 4, 2, 5, 3])
        placed = tf.reshape(placed, [shape[0], shape[1] * POOL_SIZE, shape[2] * POOL_SIZE,
                                     shape[3]])
        size = tf.shape(features)
        return placed[:, :size[1], :size[2], :]
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True,
                        help="a folder with the export benchmark's segnet.keras")
    arguments = parser.parse_args()
    model = keras.models.load_model(os.path.join(arguments.models_dir, "segnet.keras"))
    data = _benchmark().make_data("segnet")
    images = verification_images(data, data.image_size, IMAGES).astype(np.float32)
    rounded = keras.models.clone_model(model)
    rounded.set_weights([weight.astype(np.float16).astype(np.float32)
                         if weight.dtype == np.float32 else weight
                         for weight in map(np.asarray, model.get_weights())])
    unpools = [layer for layer in model.layers if isinstance(layer, MaxUnpooling2D)]

    def taps(network):  # each unpooling layer's pre-pool features, then the output
        outputs = [network.get_layer(layer.name).input[1] for layer in unpools]
        return keras.Model(network.inputs, [*outputs, network.outputs[0]])

    *features_a, probabilities_a = [np.asarray(t) for t in taps(model)(images)]
    *features_b, probabilities_b = [np.asarray(t) for t in taps(rounded)(images)]
    height, width = probabilities_a.shape[1:3]
    beyond = (np.abs(probabilities_a - probabilities_b) > TOLERANCE).any(-1)
    print(f"float16-rounded weights: within {TOLERANCE} on {1 - beyond.mean():.3%} of pixels "
          f"({beyond.sum()} of {beyond.size} beyond), largest difference "
          f"{np.abs(probabilities_a - probabilities_b).max():.4f}, masks equal on "
          f"{np.mean(probabilities_a.argmax(-1) == probabilities_b.argmax(-1)):.3%}")
    covered = np.zeros_like(beyond)
    switches_a, switches_b = {}, {}
    for layer, a, b in zip(unpools, features_a, features_b):
        switches_a[layer.name] = max_pool_switches(tf.constant(a))
        switches_b[layer.name] = max_pool_switches(tf.constant(b))
        flipped = (np.argmax(switches_a[layer.name], -1)
                   != np.argmax(switches_b[layer.name], -1))
        scale = height // flipped.shape[1]
        footprint = np.repeat(np.repeat(flipped.any(-1), scale, 1), scale, 2)[:, :height,
                                                                              :width]
        covered |= footprint
        top = _window_values(a)
        gaps = (top[..., -1] - top[..., -2])[flipped]
        print(f"{layer.name}: {flipped.mean():.3%} of windows x channels flipped "
              f"({flipped.sum()} of {flipped.size}), median float32 top-2 gap "
              f"{np.median(gaps) if gaps.size else float('nan'):.2e}; their {scale}x{scale} px "
              f"footprints hold {(beyond & footprint).sum() / max(beyond.sum(), 1):.1%} of "
              f"the pixels beyond {TOLERANCE}")
    print(f"all footprints: {covered.mean():.2%} of pixels, "
          f"{(beyond & covered).sum() / max(beyond.sum(), 1):.1%} of those beyond {TOLERANCE}")
    original = MaxUnpooling2D.call
    for label, table in (("its own switches (control)", switches_b),
                         ("the float32 model's switches", switches_a)):
        MaxUnpooling2D.call = _forced_call(table)
        try:
            forced = np.asarray(rounded(tf.constant(images), training=False))
        finally:
            MaxUnpooling2D.call = original
        difference = np.abs(probabilities_a - forced)
        print(f"rounded weights with {label}: within {TOLERANCE} on "
              f"{1 - (difference > TOLERANCE).any(-1).mean():.3%} of pixels, largest "
              f"difference {difference.max():.4f}")


if __name__ == "__main__":
    main()
