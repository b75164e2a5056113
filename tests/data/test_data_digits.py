"""`vk.data.digits`: scikit-learn's bundled handwritten digits as 3-channel images."""

from __future__ import annotations

import numpy as np

import visionkit as vk


def test_digits_sizes_classes_values_and_stratified_split():
    data = vk.data.digits(image_size=(16, 16), batch_size=512, validation_split=0.2)
    assert data.train_size + data.val_size == 1797
    assert data.num_classes == 10 and data.class_names == tuple(str(i) for i in range(10))
    assert data.input_shape == (16, 16, 3)
    val = [(x.numpy(), y.numpy()) for x, y in data.val]
    images = np.concatenate([x for x, _ in val])
    labels = np.concatenate([y for _, y in val])
    assert len(labels) == data.val_size
    assert set(labels.tolist()) == set(range(10))
    # About 20% of each class is held out.
    counts = np.bincount(labels, minlength=10)
    assert np.all(np.abs(counts - 0.2 * np.bincount(
        np.concatenate([y.numpy() for _, y in data.train] + [labels]))) <= 1)
    assert images.shape[1:] == (16, 16, 3)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # gray in 3 channels
    assert images.min() >= 0.0 and images.max() <= 255.0
    assert images.max() > 250.0  # intensities 0..16 were scaled to 0..255
