"""Segmenters take any input size: padded inside the model, cropped back at the output.

The padding is checked against NumPy's symmetric padding; a U-Net on 72x100 images (not
a multiple of 16) trains, round-trips through `.keras`, and serves masks at 72x100 whose
probabilities equal Keras's.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.models.layers import CropToReference, PadToMultiple

SIZE = (72, 100)  # neither side a multiple of 16


@pytest.mark.parametrize("shape", [(1, 5, 7, 2), (2, 17, 3, 1), (1, 16, 32, 3)])
def test_padding_mirrors_as_numpy_does(shape):
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    padded = np.asarray(PadToMultiple(16)(images))
    height, width = (-shape[1]) % 16, (-shape[2]) % 16
    expected = np.pad(images, [(0, 0), (0, height), (0, width), (0, 0)], mode="symmetric")
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(np.asarray(CropToReference()([padded, images])), images)


@pytest.mark.heavy
def test_a_unet_trains_and_serves_at_a_size_its_poolings_do_not_divide(tmp_path):
    data = vk.data.shapes("segmentation", n=16, image_size=SIZE, seed=0, batch_size=4,
                          validation_split=0.25)
    model = vk.models.build("unet", data.input_shape, data.num_classes, depth=4, filters=4)
    assert model.output_shape == (None, *SIZE, data.num_classes)
    run = vk.train.fit(model, data, epochs=1, steps_per_epoch=1, validation_steps=1,
                       verbose=0, plots=False, tensorboard=False,
                       run_dir=tmp_path / "run")
    reloaded = keras.saving.load_model(run.best_checkpoint)
    images = next(iter(data.val))[0].numpy()[:2]
    np.testing.assert_allclose(reloaded.predict(images, verbose=0),
                               run.model.predict(images, verbose=0), atol=1e-6)
    served = vk.export.load(vk.export.saved_model(run.model, str(tmp_path / "export"),
                                                  data=data))
    pixels = np.clip(np.round(images), 0, 255).astype(np.uint8)
    outputs = served(pixels)
    assert np.asarray(outputs["mask"]).shape == (2, *SIZE)
    np.testing.assert_allclose(np.asarray(outputs["probabilities"]),
                               run.model.predict(pixels.astype("float32"), verbose=0),
                               atol=1e-5)
