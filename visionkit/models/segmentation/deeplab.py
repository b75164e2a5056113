"""DeepLabV3+: atrous spatial pyramid pooling over a backbone, with a light decoder.

Reference:
    - [Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation](
      https://arxiv.org/abs/1802.02611) (Chen et al., ECCV 2018)
    - [Rethinking Atrous Convolution for Semantic Image Segmentation](
      https://arxiv.org/abs/1706.05587) (Chen et al., 2017)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from visionkit.models.backbones import backbone_features
from visionkit.models.backbones.weights import load_weights
from visionkit.models.classification.backbone_head import load_backbone_weights
from visionkit.models.common import check_activation
from visionkit.models.docstrings import SEGMENTER_SHAPES, fill_docstring
from visionkit.models.registry import register
from visionkit.models.segmentation.head import crop_to_input, padded_input

__all__ = ["deeplabv3plus"]

# Atrous rates of the ASPP branches at output stride 16 (DeepLabV3, section 3.3).
DEFAULT_ATROUS_RATES = (6, 12, 18)
# The encoder's features (stride 16) and the decoder's low-level features (stride 4).
_ENCODER_LEVEL, _LOW_LEVEL = 4, 2
_ENCODER_STRIDE, _LOW_STRIDE = 2 ** _ENCODER_LEVEL, 2 ** _LOW_LEVEL
# Inputs are padded (inside the model) to multiples of the backbone's deepest stride (P5).
_INPUT_MULTIPLE = 32


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str, dilation_rate: int = 1):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation_rate,
                            use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


@register("deeplabv3plus", task="segmentation")
@fill_docstring(shapes=SEGMENTER_SHAPES)
def deeplabv3plus(input_shape: tuple[int, int, int], num_classes: int,
                  backbone: str = "resnet50", atrous_rates: Sequence[int] = DEFAULT_ATROUS_RATES,
                  aspp_filters: int = 256, low_level_filters: int = 48,
                  width_multiplier: float | None = None, activation: str | None = "softmax",
                  backbone_weights: str | os.PathLike | None = None,
                  weights: str | os.PathLike | None = None,
                  name: str = "deeplabv3plus") -> keras.Model:
    """DeepLabV3+ (Chen et al. 2018) over any P1..P5 backbone, at output stride 16.

    ASPP over the backbone's P4 (stride 16): a 1x1 convolution, 3x3 convolutions with
    dilation `atrous_rates`, and image-level pooling, each with batch norm and ReLU,
    concatenated and projected by a 1x1 convolution. The decoder upsamples that 4x
    (bilinear), concatenates the P2 features (stride 4) reduced to `low_level_filters`
    channels, applies two 3x3 convolutions and a 1x1 classifier, and upsamples 4x back to
    the input size. The softmax comes last, in a layer named "predictions".

    Args:
        input_shape: `(height, width, channels)`, any size (padded inside the model to
            multiples of 32, the output cropped back).
        num_classes: number of classes.
        backbone: a name from `vk.models.available_backbones()`. Defaults to "resnet50".
        atrous_rates: dilation rates of the three 3x3 ASPP branches. Defaults to
            (6, 12, 18).
        aspp_filters: filters of the ASPP branches and the decoder. Defaults to 256.
        low_level_filters: channels the P2 features are reduced to. Defaults to 48.
        width_multiplier: the backbone's width multiplier. Defaults to None.
        activation: "softmax", "sigmoid" or None (logits). Defaults to "softmax".
        backbone_weights: a local weights file of the backbone.
        weights: a local `.weights.h5` file of this whole model.
        name: the model's name. Defaults to "deeplabv3plus".

    {shapes}

    Example:

    >>> model = deeplabv3plus((32, 64, 3), 3, backbone="resnet18", aspp_filters=8,
    ...                       low_level_filters=4, width_multiplier=0.125)
    >>> model.output_shape
    (None, 32, 64, 3)
    """
    check_activation(activation)
    rates = tuple(int(rate) for rate in atrous_rates)
    if not rates or min(rates) < 1:
        raise ValueError(f"Expected atrous_rates as positive integers; received "
                         f"atrous_rates={atrous_rates!r}.")
    inputs, padded, shape = padded_input(name, input_shape, _INPUT_MULTIPLE)
    options = {} if width_multiplier is None else {"width_multiplier": width_multiplier}
    features = backbone_features(backbone, padded, **options)
    encoded = features[f"P{_ENCODER_LEVEL}"]
    height, width = shape[0] // _ENCODER_STRIDE, shape[1] // _ENCODER_STRIDE

    branches = [_conv_bn_relu(encoded, aspp_filters, 1, "aspp_1x1")]
    for rate in rates:
        branches.append(_conv_bn_relu(encoded, aspp_filters, 3, f"aspp_rate{rate}",
                                      dilation_rate=rate))
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(encoded)
    pooled = _conv_bn_relu(pooled, aspp_filters, 1, "aspp_pool_proj")
    branches.append(keras.layers.UpSampling2D((height, width), name="aspp_pool_upsample")(pooled))
    x = keras.layers.Concatenate(name="aspp_concat")(branches)
    x = _conv_bn_relu(x, aspp_filters, 1, "aspp_project")
    x = keras.layers.Dropout(0.1, name="aspp_dropout")(x)

    x = keras.layers.UpSampling2D(_ENCODER_STRIDE // _LOW_STRIDE, interpolation="bilinear",
                                  name="decoder_upsample")(x)
    low = _conv_bn_relu(features[f"P{_LOW_LEVEL}"], low_level_filters, 1, "decoder_low_level")
    x = keras.layers.Concatenate(name="decoder_concat")([x, low])
    x = _conv_bn_relu(x, aspp_filters, 3, "decoder_block1")
    x = _conv_bn_relu(x, aspp_filters, 3, "decoder_block2")
    x = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="class_scores")(x)
    x = keras.layers.UpSampling2D(_LOW_STRIDE, interpolation="bilinear", dtype="float32",
                                  name="output_upsample")(x)
    x = crop_to_input(x, inputs)
    outputs = keras.layers.Activation(activation or "linear", dtype="float32",
                                      name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name)
    load_backbone_weights(model, backbone, shape, backbone_weights, **options)
    return load_weights(model, weights)
