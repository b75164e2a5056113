"""Fixtures of the interpretation tests: tiny models, and one briefly trained on digits."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_model():
    """simple_cnn on non-square 24x32 RGB images, 3 classes, softmax, seeded."""
    import keras

    import visionkit as vk

    keras.utils.set_random_seed(1)
    return vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))


@pytest.fixture(scope="session")
def tiny_images():
    return np.random.default_rng(0).uniform(0, 255, (3, 24, 32, 3)).astype("float32")


@pytest.fixture(scope="session")
def nested_model():
    """The usual transfer-learning shape, small: a backbone nested as a sub-model, logits."""
    import keras

    keras.utils.set_random_seed(2)
    inner_input = keras.Input((20, 28, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="inner_conv1")(
        inner_input)
    x = keras.layers.MaxPooling2D(2, name="inner_pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="inner_conv2")(x)
    backbone = keras.Model(inner_input, {"P1": x}, name="tiny_backbone")
    inputs = keras.Input((20, 28, 3))
    features = backbone(keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features["P1"])
    outputs = keras.layers.Dense(3, name="predictions")(pooled)
    return keras.Model(inputs, outputs, name="nested")


@pytest.fixture(scope="session")
def mobilenet_model():
    """A real keras.applications backbone nested inside (slow to trace: use once)."""
    import keras

    import visionkit as vk

    keras.utils.set_random_seed(2)
    return vk.models.build("mobilenet_v3_small", (32, 48, 3), 3, width_multiplier=0.75,
                           activation=None)


@pytest.fixture(scope="session")
def trained_digits():
    """(model, data): a simple_cnn trained 4 epochs on 16x16 digits (about 10 s)."""
    import keras

    import visionkit as vk

    keras.utils.set_random_seed(0)
    data = vk.data.digits(image_size=(16, 16), batch_size=32, seed=0)
    model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(16, 32, 32))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    model.fit(data.train, epochs=4, verbose=0, shuffle=False)
    return model, data
