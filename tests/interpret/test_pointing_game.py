"""The pointing game on the synthetic shapes (slow: trains a classifier for about 100 s).

For a classifier trained on shapes, the maximum of the occlusion map and of the Grad-CAM
map should fall inside the shape's mask on most validation images (the shapes cover
about 14% of the image). `benchmarks/interpret.py` prints the same figures.
"""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes_classifier():
    """The benchmark's classifier: simple_cnn, 2,000 scenes of 48x48, 30 epochs."""
    import keras

    from visionkit.data.synthetic import generate_shapes

    keras.utils.set_random_seed(0)
    scenes = generate_shapes(2400, (48, 48), seed=0)
    images = scenes.images.astype("float32")
    labels = scenes.instance_classes
    model = vk.models.build("simple_cnn", (48, 48, 3), 5, filters=(32, 64, 128), dropout=0.1)
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    model.fit(images[:2000], labels[:2000], epochs=30, batch_size=32, verbose=0)
    return model, images[2000:], labels[2000:], scenes.instance_ids[2000:] >= 0


def inside_the_mask(maps, masks):
    """Fraction of the maps whose maximum lies on a pixel of the shape."""
    rows, cols = np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), maps.shape[1:])
    return float(masks[np.arange(len(maps)), rows, cols].mean())


def test_the_occlusion_maximum_points_at_the_shape(shapes_classifier):
    model, images, labels, masks = shapes_classifier
    maps = vk.interpret.occlusion(model, images, target=labels, patch_size=8, stride=4,
                                  verbose=0)
    assert inside_the_mask(maps, masks) >= 0.8


@pytest.mark.xfail(strict=True, reason="Grad-CAM's maximum falls on the shapes' outlines, "
                   "often just outside the mask (54% inside at relu2, 43% at the default "
                   "layer; 80% within 2 pixels)")
def test_the_grad_cam_maximum_points_at_the_shape(shapes_classifier):
    model, images, labels, masks = shapes_classifier
    assert inside_the_mask(vk.interpret.grad_cam(model, images, target=labels), masks) >= 0.8
