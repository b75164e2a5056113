"""Pieces the segmentation builders share: any-size inputs and the per-pixel output.

A segmenter takes images of any height and width: `padded_input` pads them (inside the
model) to the multiple its poolings need, and `segmentation_output` crops the per-pixel
scores back to the input's size before the final pointwise layer, so the model's output
has the input's size and its last layer is still the scoring "predictions" layer.
"""

from __future__ import annotations

import keras

from visionkit.models.common import check_activation, raw_image_input
from visionkit.models.layers.crop_to_reference import CropToReference
from visionkit.models.layers.pad_to_multiple import PadToMultiple, padded_size

__all__ = ["check_segmentation_shape", "padded_input", "segmentation_output"]


def check_segmentation_shape(model_name: str, input_shape: tuple, multiple: int) -> tuple:
    """Validates `(height, width, channels)`; returns the shape padded to `multiple`.

    Height and width need not be multiples of `multiple` (see `padded_input`).

    Raises:
        ValueError: naming the model and the received shape.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or any(size is None or int(size) < 1 for size in shape):
        raise ValueError(f"{model_name} expects input_shape as (height, width, channels) of "
                         f"positive integers; received input_shape={input_shape!r}.")
    return (padded_size(shape[0], multiple), padded_size(shape[1], multiple), shape[2])


def padded_input(model_name: str, input_shape: tuple, multiple: int
                 ) -> tuple[keras.KerasTensor, keras.KerasTensor, tuple]:
    """The model's raw-pixel input and the same images padded to `multiple`.

    Returns:
        `(inputs, padded, padded_shape)`: `padded` is `inputs` itself when the sides
        are already multiples.
    """
    padded_shape = check_segmentation_shape(model_name, input_shape, multiple)
    inputs = raw_image_input(tuple(input_shape))
    if padded_shape == tuple(input_shape):
        return inputs, inputs, padded_shape
    return inputs, PadToMultiple(multiple, name="pad_to_multiple")(inputs), padded_shape


def crop_to_input(features: keras.KerasTensor, inputs: keras.KerasTensor) -> keras.KerasTensor:
    """`features` cut back to the input's height and width (a no-op when they agree)."""
    if tuple(features.shape[1:3]) == tuple(inputs.shape[1:3]):
        return features
    return CropToReference(name="crop_to_input")([features, inputs])


def segmentation_output(features: keras.KerasTensor, num_classes: int,
                        activation: str | None = "softmax",
                        inputs: keras.KerasTensor | None = None) -> keras.KerasTensor:
    """A 1x1 convolution to per-pixel class scores named "predictions", kept in float32.

    With `inputs`, the features are first cropped to the input's height and width.
    """
    check_activation(activation)
    if inputs is not None:
        features = crop_to_input(features, inputs)
    return keras.layers.Conv2D(num_classes, 1, activation=activation, dtype="float32",
                               name="predictions")(features)
