"""U-Net decoders on encoder backbones (`unet_resnet34`, `unet_mobilenet_v3_small`, ...).

The encoder is any P1..P5 backbone (DESIGN.md, principle 7); the decoder climbs from P5
back to the input resolution, concatenating the backbone's map of each level on the way.

Reference:
    - [U-Net: Convolutional Networks for Biomedical Image Segmentation](
      https://arxiv.org/abs/1505.04597) (Ronneberger, Fischer & Brox, MICCAI 2015)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence

import keras

from visionkit.models.backbones import backbone_features
from visionkit.models.backbones.weights import load_weights
from visionkit.models.classification.backbone_head import load_backbone_weights
from visionkit.models.docstrings import SEGMENTER_SHAPES, fill_docstring
from visionkit.models.registry import register
from visionkit.models.segmentation.head import padded_input, segmentation_output
from visionkit.models.segmentation.unet import check_unet_attention, conv_block, gate_skip
from visionkit.models.variants import compile_builder

__all__ = ["UNET_BACKBONES", "unet_on_backbone"]

# The backbones offered as `unet_<backbone>` in the registry.
UNET_BACKBONES = ("resnet18", "resnet34", "resnet50", "vgg16", "mobilenet_v2",
                  "mobilenet_v3_small", "efficientnet_b0")
# Decoder filters from the P4 level up to full resolution (five upsampling steps).
DEFAULT_DECODER_FILTERS = (256, 128, 64, 32, 16)
_LEVELS = 5


@fill_docstring(shapes=SEGMENTER_SHAPES)
def unet_on_backbone(backbone: str, input_shape: tuple[int, int, int], num_classes: int,
                     decoder_filters: Sequence[int] = DEFAULT_DECODER_FILTERS,
                     batch_norm: bool = True, width_multiplier: float | None = None,
                     activation: str | None = "softmax",
                     backbone_weights: str | os.PathLike | None = None,
                     weights: str | os.PathLike | None = None,
                     name: str | None = None, attention: str | None = None) -> keras.Model:
    """A U-Net whose contracting path is the backbone `backbone`.

    The decoder upsamples P5 by 2 (nearest), concatenates P4 and applies two 3x3
    convolutions, and so on down to P1; a last upsampling and block return to the input
    resolution, then a 1x1 convolution gives the class scores.

    Args:
        backbone: a name from `vk.models.available_backbones()`.
        input_shape: `(height, width, channels)`, any size (padded inside the model to
            multiples of 32, the output cropped back).
        num_classes: number of classes.
        decoder_filters: filters of the five decoder blocks, deepest first.
            Defaults to (256, 128, 64, 32, 16).
        batch_norm: batch norm in the decoder blocks. Defaults to True.
        width_multiplier: the backbone's width multiplier, if it takes one.
            Defaults to None (the backbone's default).
        activation: "softmax", "sigmoid" or None (logits). Defaults to "softmax".
        backbone_weights: a local weights file of the backbone (see `build_backbone`).
        weights: a local `.weights.h5` file of this whole model.
        name: the model's name. Defaults to `"unet_" + backbone`.
        attention: None, or "gate": each backbone map is scaled by an `AttentionGate`
            driven by the decoder's map one level deeper (Oktay et al. 2018).
            Defaults to None.

    {shapes}

    Example:

    >>> model = unet_on_backbone("resnet18", (32, 64, 3), 2, decoder_filters=(8,) * 5,
    ...                          width_multiplier=0.125)
    >>> model.output_shape
    (None, 32, 64, 2)
    """
    filters = tuple(int(f) for f in decoder_filters)
    if len(filters) != _LEVELS or min(filters) < 1:
        raise ValueError(f"Expected decoder_filters as {_LEVELS} positive integers (deepest "
                         f"first); received decoder_filters={decoder_filters!r}.")
    check_unet_attention(attention)
    model_name = name or f"unet_{backbone}"
    inputs, padded, shape = padded_input(model_name, input_shape, 2 ** _LEVELS)
    options = {} if width_multiplier is None else {"width_multiplier": width_multiplier}
    features = backbone_features(backbone, padded, **options)
    x = features[f"P{_LEVELS}"]
    for step, width in enumerate(filters):
        level = _LEVELS - 1 - step
        skip = (gate_skip(features[f"P{level}"], x, attention, f"decoder{level}")
                if level > 0 else None)
        x = keras.layers.UpSampling2D(2, name=f"decoder{level}_upsample")(x)
        if skip is not None:
            x = keras.layers.Concatenate(name=f"decoder{level}_concat")([x, skip])
        x = conv_block(x, width, f"decoder{level}", batch_norm)
    outputs = segmentation_output(x, num_classes, activation, inputs=inputs)
    model = keras.Model(inputs, outputs, name=model_name)
    load_backbone_weights(model, backbone, shape, backbone_weights, **options)
    return load_weights(model, weights)


def _register(backbone: str) -> None:
    # A def of this module (as variants makes them): help() and inspect.signature show
    # unet_on_backbone's options less `backbone`, Python's own errors for a wrong
    # argument name this builder, and pickle finds it here by name.
    signature = inspect.signature(unet_on_backbone)
    name = f"unet_{backbone}"
    builder = compile_builder(
        name, [parameter for key, parameter in signature.parameters.items()
               if key != "backbone"], unet_on_backbone, globals(), {"backbone": backbone},
        signature.return_annotation)
    builder.__doc__ = _wrapper_doc(backbone)
    globals()[name] = builder
    register(name, task="segmentation")(builder)


def _wrapper_doc(backbone: str) -> str:
    """`unet_on_backbone`'s docstring for the builder of one backbone: its own summary and
    example, without the `backbone` argument."""
    doc = inspect.cleandoc(unet_on_backbone.__doc__ or "")
    body = doc.split("\n\n", 1)[1].split("Example:")[0].rstrip()
    body = "\n".join(line for line in body.splitlines()
                     if not line.lstrip().startswith("backbone: "))
    return (f"A U-Net whose contracting path is the {backbone} backbone "
            f"(`unet_on_backbone(\"{backbone}\", ...)`).\n\n{body}\n\n"
            f"Example (unet_on_backbone's runs as a doctest):\n\n```python\n"
            f"model = vk.models.build(\"unet_{backbone}\", (64, 64, 3), 2)\n```\n")


for _backbone in UNET_BACKBONES:
    _register(_backbone)
