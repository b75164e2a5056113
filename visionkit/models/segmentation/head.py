"""Pieces the segmentation builders share: size checks and the per-pixel output."""

from __future__ import annotations

import keras

from visionkit.models.common import check_activation

__all__ = ["check_segmentation_shape", "segmentation_output"]


def check_segmentation_shape(model_name: str, input_shape: tuple, multiple: int) -> tuple:
    """Validates `(height, width, channels)` with height and width multiples of `multiple`.

    Raises:
        ValueError: naming the model, the required multiple and the received shape.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or any(size is None or int(size) < 1 for size in shape):
        raise ValueError(f"Expected input_shape as (height, width, channels) of positive "
                         f"integers; received input_shape={input_shape!r}.")
    if shape[0] % multiple or shape[1] % multiple:
        raise ValueError(f"{model_name} needs a height and width that are multiples of "
                         f"{multiple} (one halving per pooling step); received "
                         f"input_shape={shape!r}.")
    return shape


def segmentation_output(features: keras.KerasTensor, num_classes: int,
                        activation: str | None = "softmax") -> keras.KerasTensor:
    """A 1x1 convolution to per-pixel class scores named "predictions", kept in float32."""
    check_activation(activation)
    return keras.layers.Conv2D(num_classes, 1, activation=activation, dtype="float32",
                               name="predictions")(features)
