"""Adapters that turn keras.applications models into P1..P5 backbones.

Each family has a table of taps found by layer NAME, never by position: `Pn` is the last
feature map at 1/2^n of the input, usually the activation just before the layer that
halves the resolution again (as keras-hub's and the TensorFlow segmentation tutorial's
feature extractors do). MobileNetV3 gives its activations generated names
(`re_lu_7`, `activation_12`) that change with how many layers a process has built, so
its taps are "the input of" a stably named layer (the depthwise padding that starts the
next stride-2 block) or the model's own output.

Every adapter takes raw 0..255 pixels and applies the preprocessing its family was
trained with, inside the graph: EfficientNet and MobileNetV3 carry their own; the others
get a `Rescaling` layer named `preprocess` ("tf" mode: to -1..1; "torch" mode: ImageNet
mean and standard deviation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras

from visionkit.models.backbones.weights import describe_weights_mismatch, is_legacy_weights

__all__ = ["APPLICATION_FAMILIES", "ApplicationFamily", "application_features"]

# "torch"-mode statistics of ImageNet (keras.applications.imagenet_utils).
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_PIXEL_MAX = 255.0
# keras.applications refuses inputs smaller than 32x32 for every family used here.
APPLICATION_MIN_SIZE = 32

# Tap ports: the output of the named layer, the input of the named layer, or (with the
# layer name `MODEL_OUTPUT`) the output of the whole application model.
OUTPUT, INPUT = "output", "input"
MODEL_OUTPUT = "<model output>"


@dataclass(frozen=True)
class ApplicationFamily:
    """How to build one keras.applications family as a backbone.

    Attributes:
        constructor: the keras.applications function.
        preprocessing: "builtin" (the model rescales itself), "tf" (to -1..1) or "torch"
            (ImageNet mean/std).
        taps: level -> (layer name, port), port "output" or "input".
        reference: the paper.
        width_argument: the constructor's width argument (MobileNet's `alpha`), if any.
    """

    constructor: Callable[..., keras.Model]
    preprocessing: str
    taps: dict[str, tuple[str, str]]
    reference: str
    width_argument: str | None = None
    extra_arguments: dict = field(default_factory=dict)




def _taps(*layers: str, port: str = OUTPUT) -> dict[str, tuple[str, str]]:
    """P1..P5 taps on the given layers, in order, all at `port` but the model output."""
    return {f"P{level}": (layer, OUTPUT if layer == MODEL_OUTPUT else port)
            for level, layer in enumerate(layers, start=1)}


_MOBILENET_V2_TAPS = _taps("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
                           "block_13_expand_relu", "out_relu")
_MOBILENET_V3_SMALL_TAPS = _taps(
    "expanded_conv_depthwise_pad", "expanded_conv_1_depthwise_pad",
    "expanded_conv_3_depthwise_pad", "expanded_conv_8_depthwise_pad", MODEL_OUTPUT, port=INPUT)
_MOBILENET_V3_LARGE_TAPS = _taps(
    "expanded_conv_1_depthwise_pad", "expanded_conv_3_depthwise_pad",
    "expanded_conv_6_depthwise_pad", "expanded_conv_12_depthwise_pad", MODEL_OUTPUT, port=INPUT)
_EFFICIENTNET_TAPS = _taps("block2a_expand_activation", "block3a_expand_activation",
                           "block4a_expand_activation", "block6a_expand_activation",
                           "top_activation")
_DENSENET_TAPS = _taps("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu")
_RESNET_V2_TAPS = _taps("conv1_conv", "conv2_block3_preact_relu", "conv3_block4_preact_relu",
                        "conv4_block6_preact_relu", "post_relu")

_MOBILENET_V2_PAPER = ("MobileNetV2: Inverted Residuals and Linear Bottlenecks "
                       "(Sandler et al., CVPR 2018), https://arxiv.org/abs/1801.04381")
_MOBILENET_V3_PAPER = ("Searching for MobileNetV3 (Howard et al., ICCV 2019), "
                       "https://arxiv.org/abs/1905.02244")
_EFFICIENTNET_PAPER = ("EfficientNet: Rethinking Model Scaling for Convolutional Neural "
                       "Networks (Tan & Le, ICML 2019), https://arxiv.org/abs/1905.11946")
_DENSENET_PAPER = ("Densely Connected Convolutional Networks (Huang et al., CVPR 2017), "
                   "https://arxiv.org/abs/1608.06993")
_RESNET_V2_PAPER = ("Identity Mappings in Deep Residual Networks (He et al., ECCV 2016), "
                    "https://arxiv.org/abs/1603.05027")

APPLICATION_FAMILIES: dict[str, ApplicationFamily] = {
    "mobilenet_v2": ApplicationFamily(
        keras.applications.MobileNetV2, "tf", _MOBILENET_V2_TAPS, _MOBILENET_V2_PAPER,
        width_argument="alpha"),
    "mobilenet_v3_small": ApplicationFamily(
        keras.applications.MobileNetV3Small, "builtin", _MOBILENET_V3_SMALL_TAPS,
        _MOBILENET_V3_PAPER, width_argument="alpha",
        extra_arguments={"include_preprocessing": True}),
    "mobilenet_v3_large": ApplicationFamily(
        keras.applications.MobileNetV3Large, "builtin", _MOBILENET_V3_LARGE_TAPS,
        _MOBILENET_V3_PAPER, width_argument="alpha",
        extra_arguments={"include_preprocessing": True}),
    "efficientnet_b0": ApplicationFamily(
        keras.applications.EfficientNetB0, "builtin", _EFFICIENTNET_TAPS, _EFFICIENTNET_PAPER),
    "efficientnet_b1": ApplicationFamily(
        keras.applications.EfficientNetB1, "builtin", _EFFICIENTNET_TAPS, _EFFICIENTNET_PAPER),
    "densenet121": ApplicationFamily(
        keras.applications.DenseNet121, "torch", _DENSENET_TAPS, _DENSENET_PAPER),
    "resnet50_v2": ApplicationFamily(
        keras.applications.ResNet50V2, "tf", _RESNET_V2_TAPS, _RESNET_V2_PAPER),
}


def _preprocess(inputs: keras.KerasTensor, mode: str) -> keras.KerasTensor:
    """The family's input preprocessing as one `Rescaling` layer (none for "builtin")."""
    if mode == "builtin":
        return inputs
    if mode == "tf":  # 0..255 -> -1..1
        return keras.layers.Rescaling(2.0 / _PIXEL_MAX, offset=-1.0, name="preprocess")(inputs)
    if mode == "torch":  # (x / 255 - mean) / std, per channel
        scale = [1.0 / (_PIXEL_MAX * std) for std in _IMAGENET_STD_RGB]
        offset = [-mean / std for mean, std in zip(_IMAGENET_MEAN_RGB, _IMAGENET_STD_RGB)]
        return keras.layers.Rescaling(scale, offset=offset, name="preprocess")(inputs)
    raise ValueError(f"Unknown preprocessing mode {mode!r}.")


def _tap(application: keras.Model, layer_name: str, port: str) -> keras.KerasTensor:
    if layer_name == MODEL_OUTPUT:
        return application.output
    try:
        layer = application.get_layer(layer_name)
    except ValueError as error:
        raise ValueError(
            f"keras.applications model {application.name!r} has no layer {layer_name!r}; "
            f"the installed Keras ({keras.__version__}) names its layers differently. "
            "Update the tap table in visionkit/models/backbones/applications.py.") from error
    return layer.output if port == OUTPUT else layer.input


def _correct_efficientnet_normalization(application: keras.Model) -> None:
    """Applies keras.applications' ImageNet correction of EfficientNet's normalization.

    Keras builds EfficientNet with an extra `Rescaling(1 / sqrt(stddev))` after its
    `Normalization` layer only when `weights="imagenet"`, because the published weights
    expect `(x - mean) / variance` (tensorflow/tensorflow#49930). Loading the same file
    from a path skips that layer and silently mis-scales every input. The equivalent here:
    the normalization's variance multiplied by the ImageNet standard deviation, since
    `(x - m) / sqrt(v) / sqrt(s) = (x - m) / sqrt(v * s)`.
    """
    normalization = next(layer for layer in application.layers
                         if isinstance(layer, keras.layers.Normalization))
    variance = normalization.adapt_variance
    variance.assign(variance * keras.ops.convert_to_tensor(_IMAGENET_STD_RGB, variance.dtype))
    normalization.finalize_state()  # refreshes the mean/variance tensors `call` reads


def application_features(inputs: keras.KerasTensor, family_name: str,
                         width_multiplier: float = 1.0, legacy_weights: str | None = None,
                         published_imagenet: bool = False) -> dict[str, keras.KerasTensor]:
    """Wires a keras.applications model onto `inputs` (raw 0..255 RGB pixels).

    The application is built on the preprocessed tensor (`input_tensor=`), so its layers
    join the caller's functional graph and keep their keras.applications names.

    Args:
        inputs: raw images `[B, H, W, 3]` in 0..255.
        family_name: a key of `APPLICATION_FAMILIES`.
        width_multiplier: MobileNet's `alpha`; must be 1.0 for other families.
            Defaults to 1.0.
        legacy_weights: path of a legacy no-top `.h5` weights file from Keras, loaded by
            the keras.applications constructor. Defaults to None.
        published_imagenet: `legacy_weights` is the ImageNet file Keras publishes for the
            family; its preprocessing is then set as `weights="imagenet"` would set it
            (EfficientNet's normalization). Defaults to False.

    Returns:
        A dict `{"P1": ..., "P5": ...}` of feature maps 2^n times smaller than the input.
    """
    family = APPLICATION_FAMILIES[family_name]
    arguments = dict(family.extra_arguments)
    if family.width_argument is not None:
        arguments[family.width_argument] = width_multiplier
    elif width_multiplier != 1.0:
        raise ValueError(f"Backbone {family_name!r} has no width multiplier; expected "
                         f"width_multiplier=1.0, received {width_multiplier!r}.")
    weights = legacy_weights if legacy_weights and is_legacy_weights(legacy_weights) else None
    try:
        application = family.constructor(
            include_top=False, weights=weights,
            input_tensor=_preprocess(inputs, family.preprocessing), **arguments)
    except (ValueError, KeyError) as error:
        if weights is None:
            raise
        raise ValueError(describe_weights_mismatch(weights, f"backbone {family_name!r} "
                                                   f"({arguments or 'default width'})",
                                                   error)) from error
    if published_imagenet and family.constructor in (keras.applications.EfficientNetB0,
                                                     keras.applications.EfficientNetB1):
        _correct_efficientnet_normalization(application)
    return {level: _tap(application, name, port) for level, (name, port) in family.taps.items()}
