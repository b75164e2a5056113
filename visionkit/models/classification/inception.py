"""A small GoogLeNet-style network of Inception modules, for small images."""

from __future__ import annotations

import keras

from visionkit.models.backbones.blocks import conv_bn_relu, scaled_width
from visionkit.models.classification.backbone_head import classifier
from visionkit.models.common import classifier_output, rescale
from visionkit.models.docstrings import CLASSIFIER_SHAPES, fill_docstring
from visionkit.models.registry import register

__all__ = ["inception_mini"]

# Filters of GoogLeNet's modules 3a, 3b, 4a, 4b and 5a (Table 1 of the paper): 1x1,
# 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection. A 2x2-stride max pool follows the
# stem and modules 3b and 4b.
_MODULES = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
)
_POOL_AFTER = ("stem", "inception3b", "inception4b")
_STEM_FILTERS = 64
# Three stride-2 pools: 16x16 inputs end at 2x2.
INCEPTION_MIN_SIZE = 16


def inception_module(x: keras.KerasTensor, filters: tuple[int, ...], name: str
                     ) -> keras.KerasTensor:
    """Four parallel branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; pool -> 1x1.

    The 1x1 convolutions in front of the 3x3 and 5x5 ones are the paper's bottlenecks
    that keep the module cheap.
    """
    one, three_reduce, three, five_reduce, five, pool_projection = filters
    branch1 = conv_bn_relu(x, one, 1, name=f"{name}_1x1")
    branch3 = conv_bn_relu(x, three_reduce, 1, name=f"{name}_3x3_reduce")
    branch3 = conv_bn_relu(branch3, three, 3, name=f"{name}_3x3")
    branch5 = conv_bn_relu(x, five_reduce, 1, name=f"{name}_5x5_reduce")
    branch5 = conv_bn_relu(branch5, five, 5, name=f"{name}_5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    pooled = conv_bn_relu(pooled, pool_projection, 1, name=f"{name}_pool_proj")
    return keras.layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, pooled])


@register("inception_mini", task="classification")
@fill_docstring(shapes=CLASSIFIER_SHAPES)
@classifier(minimum=INCEPTION_MIN_SIZE, input_shape=(32, 32, 3), num_classes=10)
def inception_mini(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
                   width_multiplier: float = 0.5, dropout: float = 0.4) -> keras.KerasTensor:
    """A small GoogLeNet: a 3x3 stem and five Inception modules with 1x1 bottlenecks.

    Stem (3x3 conv, stride 1) -> max pool -> modules 3a, 3b -> max pool -> 4a, 4b ->
    max pool -> 5a -> global average pool -> dropout -> classifier. The modules have
    GoogLeNet's filter counts scaled by `width_multiplier`; batch norm follows every
    convolution (as in BN-Inception), which replaces the paper's auxiliary classifiers.
    Three stride-2 pools suit small images (32..128 pixels).

    Reference:
        - [Going Deeper with Convolutions](https://arxiv.org/abs/1409.4842)
          (Szegedy et al., CVPR 2015)

    Args:
        {image_args}
        width_multiplier: scales GoogLeNet's filter counts. Defaults to 0.5.
        dropout: dropout before the classifier (the paper's 0.4). Defaults to 0.4.
        {output_args}

    {shapes}

    Raises:
        ValueError: for an input smaller than 16x16, a bad `activation`, or "imagenet".

    Example:

    >>> model = inception_mini((32, 32, 3), num_classes=3, width_multiplier=0.125)
    >>> model.get_layer("inception3a_concat").output.shape
    (None, 16, 16, 32)
    """
    x = conv_bn_relu(rescale(inputs), scaled_width(_STEM_FILTERS, width_multiplier), 3,
                     name="stem")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for module_name, filters in _MODULES:
        x = inception_module(x, tuple(scaled_width(f, width_multiplier) for f in filters),
                             module_name)
        if module_name in _POOL_AFTER:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                          name=f"{module_name}_downsample")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return classifier_output(x, num_classes, activation, dropout)
