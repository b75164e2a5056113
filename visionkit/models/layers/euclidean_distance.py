"""`EuclideanDistance`: the distance between two batches of vectors, row by row."""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["EuclideanDistance"]

# Squared distances are clamped here before the square root, whose gradient at 0 (two
# identical embeddings) is infinite.
_MIN_SQUARED_DISTANCE = 1e-12


@keras.saving.register_keras_serializable(package="visionkit")
class EuclideanDistance(keras.layers.Layer):
    """`||a - b||_2` per row of `[a, b]`, both `[B, D]` -> `[B]`.

    Example:

    >>> import numpy as np
    >>> EuclideanDistance()([np.array([[0., 0.]]), np.array([[3., 4.]])]).numpy().tolist()
    [5.0]
    """

    def call(self, inputs):
        first, second = inputs
        squared = keras.ops.sum(keras.ops.square(first - second), axis=-1)
        return keras.ops.sqrt(keras.ops.maximum(squared, _MIN_SQUARED_DISTANCE))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
