"""SqueezeNet v1.1: fire modules (1x1 squeeze, then 1x1 and 3x3 expand)."""

from __future__ import annotations

import keras

from visionkit.models.backbones.blocks import scaled_width
from visionkit.models.classification.backbone_head import classifier
from visionkit.models.common import classifier_output, rescale
from visionkit.models.docstrings import CLASSIFIER_SHAPES, fill_docstring
from visionkit.models.registry import register

__all__ = ["squeezenet"]

# SqueezeNet v1.1 (the authors' release notes): fire modules as (squeeze, expand) filters;
# a 3x3 stride-2 max pool follows conv1, fire3 and fire5.
_FIRES = (
    ("fire2", 16, 64), ("fire3", 16, 64),
    ("fire4", 32, 128), ("fire5", 32, 128),
    ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256),
)
_POOL_AFTER = ("conv1", "fire3", "fire5")
_CONV1_FILTERS = 64
# conv1 (3x3/2) and three 3x3/2 pools, all "valid": 32 -> 15 -> 7 -> 3 -> 1.
SQUEEZENET_MIN_SIZE = 32


def fire_module(x: keras.KerasTensor, squeeze: int, expand: int, name: str
                ) -> keras.KerasTensor:
    """1x1 squeeze convolution, then 1x1 and 3x3 expand convolutions concatenated."""
    def conv(tensor: keras.KerasTensor, filters: int, size: int, part: str) -> keras.KerasTensor:
        return keras.layers.Conv2D(filters, size, padding="same", activation="relu",
                                   kernel_initializer="he_normal", name=f"{name}_{part}")(tensor)

    squeezed = conv(x, squeeze, 1, "squeeze1x1")
    return keras.layers.Concatenate(name=f"{name}_concat")(
        [conv(squeezed, expand, 1, "expand1x1"), conv(squeezed, expand, 3, "expand3x3")])


@register("squeezenet", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES)
@classifier(minimum=SQUEEZENET_MIN_SIZE)
def squeezenet(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
               width_multiplier: float = 1.0, dropout: float = 0.5) -> keras.KerasTensor:
    """SqueezeNet v1.1: a 3x3 stride-2 conv, eight fire modules, three max pools.

    The v1.1 layout (conv1 with 64 3x3 filters; pools after conv1, fire3 and fire5)
    needs 2.4x less computation than v1.0 at the same accuracy. The paper's classifier,
    a ReLU 1x1 convolution to `num_classes` maps followed by global average pooling, is
    built here as dropout -> global average pooling -> dense "predictions" layer: the
    same parameters, but class scores are not forced non-negative. At 224x224x3 with
    1000 classes the model has 1,235,496 parameters.

    Reference:
        - [SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
          size](https://arxiv.org/abs/1602.07360) (Iandola et al., 2016)

    Args:
        {image_args}
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        dropout: dropout on the last fire module's output. Defaults to 0.5.
        {output_args}

    {shapes}

    Raises:
        ValueError: for an input smaller than 32x32, a bad `activation`, or "imagenet".

    Example:

    >>> squeezenet((224, 224, 3), num_classes=1000).count_params()
    1235496
    """
    x = keras.layers.Conv2D(scaled_width(_CONV1_FILTERS, width_multiplier), 3, strides=2,
                            activation="relu", kernel_initializer="he_normal",
                            name="conv1")(rescale(inputs))
    x = keras.layers.MaxPooling2D(3, strides=2, name="conv1_pool")(x)
    for fire_name, squeeze, expand in _FIRES:
        x = fire_module(x, scaled_width(squeeze, width_multiplier),
                        scaled_width(expand, width_multiplier), fire_name)
        if fire_name in _POOL_AFTER:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"{fire_name}_pool")(x)
    x = keras.layers.Dropout(dropout, name="fire9_dropout")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return classifier_output(x, num_classes, activation)
