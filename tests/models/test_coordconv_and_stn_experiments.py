"""The papers' own experiments, small: CoordConv on supervised coordinate classification
(quadrant split) and a spatial transformer on digits rotated by up to +-60 degrees.

Both train for minutes on 2 cores, so they are slow tests. Figures measured when they
were written (seeded; CPU training is not bit-reproducible across machines):
- CoordConv: 100.0% test accuracy on the held-out quadrant; the same stack with plain
  convolutions 0.0% (it cannot tell pixels apart: its input is the same everywhere).
- Digits rotated +-60 degrees: CNN 95.7%, the same CNN behind a SpatialTransformer
  98.5%; the transformer's predicted angle correlates with the applied one, r = 0.93.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.models.layers import CoordConv2D, SpatialTransformer

pytestmark = pytest.mark.slow

GRID = 32  # Liu et al. use 64x64; 32x32 keeps the experiment small.
CANVAS = 32
DIGIT_SIZE = 20  # the 8x8 digits upscaled, centred, so a rotation never crops them
MAX_ROTATION = 60.0


def coordinate_classifier(coordinates: bool) -> keras.Model:
    """Liu et al. 2018, Section 4 ("supervised coordinate classification"): the (i, j)
    input is tiled over the grid; 1x1 convolutions score every pixel; a softmax over
    all pixels. With `coordinates=False` the first layer is a plain Conv2D."""
    inputs = keras.Input((2,))
    x = keras.layers.Reshape((1, 1, 2))(inputs)
    x = keras.layers.UpSampling2D(GRID)(x)
    first = CoordConv2D if coordinates else keras.layers.Conv2D
    x = first(16, 1, activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.Flatten()(keras.layers.Conv2D(1, 1)(x))
    return keras.Model(inputs, keras.layers.Softmax()(x))


def test_coordconv_solves_the_quadrant_split_a_conv_cannot():
    rows, columns = (a.ravel() for a in np.meshgrid(np.arange(GRID), np.arange(GRID),
                                                    indexing="ij"))
    inputs = np.stack([rows, columns], 1).astype("float32") * 2 / (GRID - 1) - 1
    targets = rows * GRID + columns  # the one-hot pixel, as a class id
    held_out = (rows >= GRID // 2) & (columns >= GRID // 2)  # the paper's quadrant split
    accuracy = {}
    for coordinates in (True, False):
        keras.utils.set_random_seed(0)
        model = coordinate_classifier(coordinates)
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(inputs[~held_out], targets[~held_out], batch_size=32, epochs=40, verbose=0)
        accuracy[coordinates] = model.evaluate(inputs[held_out], targets[held_out],
                                               verbose=0)[1]
    assert coordinate_classifier(True).count_params() - coordinate_classifier(
        False).count_params() == 2 * 16  # the same stack, plus the coordinate weights
    print(f"quadrant-split test accuracy: CoordConv {accuracy[True]:.4f}, "
          f"plain conv {accuracy[False]:.4f}")
    assert accuracy[True] >= 0.99, accuracy
    assert accuracy[False] <= 0.1, accuracy


def rotate(images: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotates each image about its centre (bilinear, zero fill), by TensorFlow's op."""
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    centre = (CANVAS - 1) / 2
    shift_x = centre - cos * centre - sin * centre
    shift_y = centre + sin * centre - cos * centre
    zeros = np.zeros_like(cos)
    transforms = np.stack([cos, sin, shift_x, -sin, cos, shift_y, zeros, zeros], 1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms.astype("float32"), output_shape=[CANVAS, CANVAS],
        fill_value=0.0, interpolation="BILINEAR").numpy()


def rotated_digits(seed: int = 0, copies: int = 4):
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = digits.images.astype("float32")[..., None] / 16.0
    large = tf.image.resize(small, (DIGIT_SIZE, DIGIT_SIZE), "bilinear").numpy()
    canvas = np.zeros((len(large), CANVAS, CANVAS, 1), "float32")
    offset = (CANVAS - DIGIT_SIZE) // 2
    canvas[:, offset:offset + DIGIT_SIZE, offset:offset + DIGIT_SIZE] = large
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(canvas))
    train, test = order[:1400], order[1400:]
    train_x = np.concatenate([canvas[train]] * copies)
    train_y = np.concatenate([digits.target[train]] * copies)
    train_x = rotate(train_x, rng.uniform(-MAX_ROTATION, MAX_ROTATION, len(train_x)))
    test_angles = rng.uniform(-MAX_ROTATION, MAX_ROTATION, len(test))
    return train_x, train_y, rotate(canvas[test], test_angles), digits.target[test], test_angles


def digit_classifier(transformer: bool) -> keras.Model:
    inputs = keras.Input((CANVAS, CANVAS, 1))
    x = inputs
    if transformer:
        x = SpatialTransformer(localization_filters=(8, 16), localization_units=32,
                               name="transformer")(x)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_spatial_transformer_undoes_rotations():
    train_x, train_y, test_x, test_y, test_angles = rotated_digits()
    accuracy, models = {}, {}
    for transformer in (False, True):
        keras.utils.set_random_seed(1)
        model = digit_classifier(transformer)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(train_x, train_y, batch_size=64, epochs=15, verbose=0)
        accuracy[transformer] = model.evaluate(test_x, test_y, verbose=0)[1]
        models[transformer] = model
    assert accuracy[True] > accuracy[False], accuracy
    theta = models[True].get_layer("transformer").transform(test_x).numpy()
    # The rotation part of theta (the angle of its closest rotation matrix).
    predicted = np.degrees(np.arctan2(theta[:, 1, 0] - theta[:, 0, 1],
                                      theta[:, 0, 0] + theta[:, 1, 1]))
    correlation = np.corrcoef(predicted, test_angles)[0, 1]
    print(f"rotated digits: accuracy {accuracy}, angle correlation r = {correlation:.3f}")
    assert abs(correlation) >= 0.8, (correlation, accuracy)
