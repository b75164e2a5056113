"""GoogLeNet (Inception v1), with its two auxiliary classifiers for training."""

from __future__ import annotations

import keras

from visionkit.models.backbones.factory import BACKBONE_MIN_SIZE
from visionkit.models.backbones.googlenet import (
    AUXILIARY_TAPS,
    auxiliary_classifier,
    googlenet_features,
)
from visionkit.models.classification.backbone_head import classifier
from visionkit.models.common import classifier_output
from visionkit.models.registry import register

__all__ = ["AUXILIARY_LOSS_WEIGHTS", "drop_auxiliary_classifiers", "googlenet"]

# Section 5: "their loss is added to the total loss of the network with a discount
# weight (the losses of the auxiliary classifiers were weighted by 0.3)".
AUXILIARY_LOSS_WEIGHTS = {"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}
_DROPOUT = 0.4


@register("googlenet", task="classification")
@classifier(minimum=BACKBONE_MIN_SIZE)
def googlenet(inputs: keras.KerasTensor, num_classes: int, activation: str | None,
              width_multiplier: float = 1.0, dropout: float = _DROPOUT,
              auxiliary_classifiers: bool = False) -> keras.KerasTensor | dict:
    """GoogLeNet: nine Inception modules (Szegedy et al. 2015, Table 1).

    The network of Table 1: conv1 7x7/2, max pool, LRN, conv2 1x1 and 3x3, LRN, max
    pool, Inception 3a-3b, pool, 4a-4e, pool, 5a-5b, global average pooling, 40%
    dropout, a linear classifier. Every convolution has a bias and ReLU; there is no
    batch norm (the paper predates it). At 224x224x3 with 1000 classes it has 6,998,552
    parameters (Table 1's layers with their biases; the paper's rounded per-layer
    figures add up to about 6.8M).

    With `auxiliary_classifiers=True` the model also has the two auxiliary classifiers
    of Section 5 on the outputs of 4a and 4d (5x5/3 average pool, 1x1 conv 128, dense
    1024, 70% dropout, classifier) and returns a dict `{"predictions", "aux1",
    "aux2"}`; compile it with one loss per output and `loss_weights=
    AUXILIARY_LOSS_WEIGHTS` (0.3 each, Section 5) to train as the paper did. The
    auxiliary classifiers are for training only: `drop_auxiliary_classifiers(model)`
    returns the single-output model (same layers and weights, without the heads) to
    export, serve and explain.

    Reference:
        - [Going Deeper with Convolutions](https://arxiv.org/abs/1409.4842)
          (Szegedy et al., CVPR 2015)

    Args:
        {image_args}
        width_multiplier: scales every convolution's filters. Defaults to 1.0.
        dropout: dropout before the classifier. Defaults to 0.4.
        auxiliary_classifiers: add the two training-time auxiliary classifiers.
            Defaults to False.
        {output_args}

    Input shape:
        `[B, H, W, C]` raw pixels 0..255.

    Output shape:
        `[B, num_classes]`, or a dict of three such with `auxiliary_classifiers`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input smaller than 32x32, a bad `activation`, or "imagenet".

    Example:

    >>> model = googlenet((32, 32, 3), 3, width_multiplier=0.125, auxiliary_classifiers=True)
    >>> sorted(model.output)
    ['aux1', 'aux2', 'predictions']
    >>> drop_auxiliary_classifiers(model).output_shape
    (None, 3)
    """
    taps = AUXILIARY_TAPS if auxiliary_classifiers else ()
    features = googlenet_features(inputs, width_multiplier, taps)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features["P5"])
    outputs = classifier_output(x, num_classes, activation, dropout)
    if auxiliary_classifiers:
        outputs = {"predictions": outputs}
        for index, tap in enumerate(AUXILIARY_TAPS, start=1):
            outputs[f"aux{index}"] = auxiliary_classifier(
                features[tap], num_classes, f"aux{index}", width_multiplier, activation)
    return outputs


def drop_auxiliary_classifiers(model: keras.Model) -> keras.Model:
    """The single-output inference model of a GoogLeNet built with auxiliary classifiers.

    The returned model shares the trunk's and the main classifier's layers (and so their
    trained weights) with `model`; the auxiliary heads are not part of it. A model
    without them is returned unchanged.

    Args:
        model: a `googlenet(..., auxiliary_classifiers=True)` model.

    Returns:
        A `keras.Model` from the images to `[B, num_classes]`.

    Raises:
        ValueError: if `model`'s outputs are neither one tensor nor a dict with
            "predictions".
    """
    outputs = model.output
    if not isinstance(outputs, dict):
        return model
    if "predictions" not in outputs:
        raise ValueError(f"Expected a model whose outputs include 'predictions'; received "
                         f"outputs {sorted(outputs)}.")
    return keras.Model(model.input, outputs["predictions"], name=model.name)
