"""`CropToReference`: cuts a feature map back to the height and width of another tensor.

The partner of `PadToMultiple`: a segmenter pads its input to the multiple its poolings
need and crops its per-pixel scores back to the input's size (the top-left part, where
the image is; the padding went to the bottom and right).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["CropToReference"]


@keras.saving.register_keras_serializable(package="visionkit")
class CropToReference(keras.layers.Layer):
    """Crops `[B, H', W', C]` to the `[H, W]` of a reference `[B, H, W, ...]` (top-left).

    Called on `[features, reference]`. Raises (at run time) if the reference is larger.

    Example:

    >>> import numpy as np
    >>> layer = CropToReference()
    >>> layer([np.zeros((1, 8, 8, 2)), np.zeros((1, 5, 7, 3))]).shape
    TensorShape([1, 5, 7, 2])
    """

    def call(self, inputs):
        features, reference = inputs
        height, width = tf.shape(reference)[1], tf.shape(reference)[2]
        cropped = features[:, :height, :width, :]
        return tf.ensure_shape(cropped, self.compute_output_shape(
            [tuple(features.shape), tuple(reference.shape)]))

    def compute_output_shape(self, input_shape):
        features, reference = input_shape
        return (features[0], reference[1], reference[2], features[3])

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
