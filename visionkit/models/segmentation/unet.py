"""U-Net: a contracting path, an expanding path and skip connections at every level.

Reference:
    - [U-Net: Convolutional Networks for Biomedical Image Segmentation](
      https://arxiv.org/abs/1505.04597) (Ronneberger, Fischer & Brox, MICCAI 2015)
"""

from __future__ import annotations

import keras

from visionkit.models.common import rescale
from visionkit.models.docstrings import SEGMENTER_SHAPES, fill_docstring
from visionkit.models.layers.attention_gate import AttentionGate
from visionkit.models.registry import register
from visionkit.models.segmentation.head import padded_input, segmentation_output

__all__ = ["unet", "conv_block", "check_unet_attention", "gate_skip"]

_DECODERS = ("transpose", "upsampling")
# `attention="gate"`: Oktay et al. 2018's attention gates on the skip connections.
UNET_ATTENTIONS = (None, "gate")


def check_unet_attention(attention: str | None) -> str | None:
    """Validates a U-Net `attention=` option (None or "gate")."""
    if attention not in UNET_ATTENTIONS:
        raise ValueError(f"Expected attention to be one of {UNET_ATTENTIONS}; received "
                         f"attention={attention!r}.")
    return attention


def gate_skip(skip: keras.KerasTensor, gating: keras.KerasTensor, attention: str | None,
              name: str) -> keras.KerasTensor:
    """The skip connection, scaled by an `AttentionGate` driven by the coarser decoder map
    when `attention == "gate"` (F_int = half the skip's channels, as Oktay et al.)."""
    if attention != "gate":
        return skip
    inter = max(1, int(skip.shape[-1]) // 2)
    return AttentionGate(inter, name=f"{name}_attention")([skip, gating])


# Batch-norm moving averages forget at 0.9 per step (PyTorch's momentum 0.1) rather than
# Keras's 0.99: a run of a few hundred steps otherwise validates with statistics that
# still lag the weights (validation mean IoU far below training's).
BN_MOMENTUM = 0.9


def conv_block(x: keras.KerasTensor, filters: int, name: str, batch_norm: bool = False,
               dropout: float = 0.0) -> keras.KerasTensor:
    """Two 3x3 "same" convolutions with ReLU (and optional batch norm), then dropout."""
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                                kernel_initializer="he_normal",
                                name=f"{name}_conv{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


@register("unet", task="segmentation")
@fill_docstring(shapes=SEGMENTER_SHAPES)
def unet(input_shape: tuple[int, int, int], num_classes: int, depth: int = 4,
         filters: int = 64, decoder: str = "transpose", batch_norm: bool = True,
         dropout: float = 0.0, activation: str | None = "softmax",
         name: str = "unet", attention: str | None = None) -> keras.Model:
    """U-Net (Ronneberger et al. 2015) with "same" padding: output size = input size.

    Each level has two 3x3 convolutions; the number of filters starts at `filters` and
    doubles after each of the `depth` 2x2 max pools. The decoder goes back up with 2x2
    transposed convolutions ("up-convolutions", halving the filters) or with nearest
    upsampling followed by a 2x2 convolution, concatenates the encoder's map of the same
    level and applies two 3x3 convolutions. A 1x1 convolution gives the class scores.
    With the defaults and `batch_norm=False` (64 filters, depth 4, transposed
    convolutions) on a 1-channel input with 2 classes this is the paper's network:
    31,030,658 parameters. Batch norm (Ioffe & Szegedy 2015) is on by default: without
    it the network trains far more slowly from scratch at `vk.train.fit`'s defaults.

    Args:
        input_shape: `(height, width, channels)`, any size (padded inside the model to
            multiples of 2**depth, the output cropped back).
        num_classes: number of classes (output channels).
        depth: number of pooling steps. Defaults to 4.
        filters: filters of the first level. Defaults to 64.
        decoder: "transpose" (2x2 transposed convolutions) or "upsampling".
            Defaults to "transpose".
        batch_norm: batch norm after every 3x3 convolution; False for the paper's
            network. Defaults to True.
        dropout: dropout rate after the deepest block (the paper's "drop-out layers at
            the end of the contracting path"). Defaults to 0.0.
        activation: "softmax", "sigmoid" or None (logits). Defaults to "softmax".
        name: the model's name. Defaults to "unet".
        attention: None, or "gate" for Attention U-Net (Oktay et al. 2018): each skip
            connection is scaled by an `AttentionGate` whose gating signal is the
            decoder's map one level deeper (before upsampling). Defaults to None.

    {shapes}

    Raises:
        ValueError: for a bad depth, decoder, filters or input size.

    Example:

    >>> model = unet((32, 48, 3), num_classes=3, depth=2, filters=4)
    >>> model.output_shape
    (None, 32, 48, 3)
    """
    if int(depth) < 1:
        raise ValueError(f"Expected depth >= 1 pooling steps; received depth={depth!r}.")
    if int(filters) < 1:
        raise ValueError(f"Expected filters >= 1; received filters={filters!r}.")
    if decoder not in _DECODERS:
        raise ValueError(f"Expected decoder in {_DECODERS}; received decoder={decoder!r}.")
    check_unet_attention(attention)
    inputs, padded, _ = padded_input("unet", input_shape, 2 ** int(depth))
    x = rescale(padded)
    skips = []
    for level in range(int(depth)):
        x = conv_block(x, filters * 2 ** level, f"down{level + 1}", batch_norm)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = conv_block(x, filters * 2 ** int(depth), "bottom", batch_norm, dropout)
    for level in reversed(range(int(depth))):
        width = filters * 2 ** level
        skip = gate_skip(skips[level], x, attention, f"up{level + 1}")
        if decoder == "transpose":
            x = keras.layers.Conv2DTranspose(width, 2, strides=2,
                                             name=f"up{level + 1}_upconv")(x)
        else:
            x = keras.layers.UpSampling2D(2, name=f"up{level + 1}_upsample")(x)
            x = keras.layers.Conv2D(width, 2, padding="same", name=f"up{level + 1}_upconv")(x)
        x = keras.layers.Concatenate(name=f"up{level + 1}_concat")([skip, x])
        x = conv_block(x, width, f"up{level + 1}", batch_norm)
    outputs = segmentation_output(x, num_classes, activation, inputs=inputs)
    return keras.Model(inputs, outputs, name=name)
