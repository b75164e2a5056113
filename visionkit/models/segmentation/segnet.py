"""SegNet: a VGG16 encoder and a mirrored decoder that upsamples with max-pool switches.

Reference:
    - [SegNet: A Deep Convolutional Encoder-Decoder Architecture for Image Segmentation](
      https://arxiv.org/abs/1511.00561) (Badrinarayanan, Kendall & Cipolla, 2015)
"""

from __future__ import annotations

import keras

from visionkit.models.backbones.vgg import VGG_CONVS_PER_STAGE, VGG_STAGE_FILTERS
from visionkit.models.common import rescale
from visionkit.models.docstrings import SEGMENTER_SHAPES, fill_docstring
from visionkit.models.layers.max_unpooling import MaxUnpooling2D
from visionkit.models.registry import register
from visionkit.models.segmentation.head import padded_input, segmentation_output
from visionkit.models.segmentation.unet import BN_MOMENTUM

__all__ = ["segnet", "segnet_decoder_filters", "default_stages", "encoder_receptive_field",
           "basic_receptive_field", "basic_kernel_size", "MIN_BOTTLENECK", "BASIC_FILTERS",
           "BASIC_KERNEL_SIZE", "BASIC_STAGES", "VARIANTS"]

# The encoder is VGG16's 13 convolutional layers (configuration D), in five stages.
_VGG16_DEPTH = 16
_STAGES = len(VGG_STAGE_FILTERS)
# The smallest bottleneck (its shorter side, in positions) `default_stages` leaves.
MIN_BOTTLENECK = 4
# The two networks of the paper: "vgg16" (SegNet) and "basic" (SegNet-Basic, its section
# 3.1: 4 encoders and 4 decoders of one 7x7 convolution with 64 filters each).
VARIANTS = ("vgg16", "basic")
BASIC_FILTERS = 64
BASIC_KERNEL_SIZE = 7
BASIC_STAGES = 4


def segnet_decoder_filters(width: float = 1.0) -> list[list[int]]:
    """Filters of the decoder's convolutions, deepest stage first.

    The decoder mirrors the encoder: each stage repeats its encoder stage's convolutions
    in reverse, the last one of a stage moving to the next shallower stage's width; the
    shallowest stage has one 3x3 convolution (64 filters) before the 1x1 classifier.

    Example:

    >>> segnet_decoder_filters()[0], segnet_decoder_filters()[-1]
    ([512, 512, 512], [64])
    """
    widths = [max(1, int(round(f * width))) for f in VGG_STAGE_FILTERS]
    convs = VGG_CONVS_PER_STAGE[_VGG16_DEPTH]
    stages = []
    for stage in reversed(range(_STAGES)):
        out = widths[stage - 1] if stage > 0 else widths[0]
        count = convs[stage] if stage > 0 else convs[stage] - 1
        stages.append([widths[stage]] * (count - 1) + [out] if stage > 0 else [out] * count)
    return stages


def encoder_receptive_field(stages: int) -> int:
    """Receptive field in pixels of the first `stages` VGG16 stages (pools included).

    Each 3x3 convolution adds `2 * jump` pixels, each 2x2 pool `jump`, then doubles the
    jump: 6, 16, 44, 100, 212 pixels after stages 1..5.

    Example:

    >>> [encoder_receptive_field(stages) for stages in range(1, 6)]
    [6, 16, 44, 100, 212]
    """
    field, jump = 1, 1
    for convs in VGG_CONVS_PER_STAGE[_VGG16_DEPTH][:int(stages)]:
        field += 2 * jump * convs + jump
        jump *= 2
    return field


def default_stages(input_shape: tuple[int, ...]) -> int:
    """Encoder stages sized to the input: the fewest whose receptive field covers the
    shorter side, at most as many as keep the bottleneck at least 4x4, at most VGG16's five.

    The rule: `min(fewest stages with encoder_receptive_field >= side,
    floor(log2(side / MIN_BOTTLENECK)), 5)`, at least 1. Each 2x2 pool halves the maps;
    once a unit sees the whole image, another stage only shrinks the bottleneck, and a
    3x3 convolution on a 2x2 map reads mostly its zero padding (five of its nine taps
    at each position). SegNet (Badrinarayanan et al. 2015) uses all five stages at
    CamVid's 360x480, an 11x15 bottleneck whose units see 212 pixels; the rule gives the
    paper's five from 128 pixels up (224: 7x7) and fewer below: four at 64x64 (a 100-pixel
    field, a 4x4 bottleneck where the paper's five leave 2x2), three at 48x48 (6x6; four
    would leave 3x3), three at 32x32, two at 16x16. `segnet(..., stages=5)` builds the
    paper's depth at any size. Measured on visionkit's 64x64 shapes: all five stages with
    cross-entropy predicted background on 95% of pixels (mean IoU 0.209).

    Example:

    >>> default_stages((360, 480, 3)), default_stages((64, 64, 3)), default_stages((48, 48, 3))
    (5, 4, 3)

    A side given as None (any size) leaves the other side to decide; with both None all
    five stages are used.
    """
    known = [int(size) for size in input_shape[:2] if size is not None]
    if not known:  # any size (None, None, C): the paper's five stages
        return _STAGES
    side = min(known)
    stages = 1
    while stages < _STAGES and encoder_receptive_field(stages) < side:
        stages += 1
    while stages > 1 and side < MIN_BOTTLENECK * 2 ** stages:
        stages -= 1
    return stages


def basic_receptive_field(kernel_size: int, stages: int = BASIC_STAGES) -> int:
    """Receptive field in pixels of SegNet-Basic's encoder: `1 + k * (2 ** stages - 1)`.

    Each stage's k x k convolution adds `(k - 1) * jump` pixels and its 2x2 pool `jump`,
    then the jump doubles. The paper's 7x7 kernels and four stages give the 106x106 context
    window it states (Badrinarayanan et al. 2015, section 3.1).

    Example:

    >>> basic_receptive_field(7), basic_receptive_field(5), basic_receptive_field(3)
    (106, 76, 46)
    """
    return 1 + int(kernel_size) * (2 ** int(stages) - 1)


def basic_kernel_size(input_shape: tuple[int, ...], stages: int = BASIC_STAGES) -> int:
    """SegNet-Basic's kernel size sized to the input: the smallest odd size from 3 whose
    encoder's receptive field (`basic_receptive_field`) covers the shorter side, at most
    the paper's 7 (a 106-pixel window, chosen for CamVid's 360x480).

    A 7x7 convolution costs (7 / 5) ** 2 = 1.96 times a 5x5 one; at 64x64 a 5x5 kernel
    already lets every deepest unit see 76 pixels, the whole image.

    Example:

    >>> basic_kernel_size((64, 64, 3)), basic_kernel_size((360, 480, 3))
    (5, 7)
    """
    known = [int(size) for size in input_shape[:2] if size is not None]
    if not known:
        return BASIC_KERNEL_SIZE
    side = min(known)
    kernel = 3
    while kernel < BASIC_KERNEL_SIZE and basic_receptive_field(kernel, stages) < side:
        kernel += 2
    return kernel


def _conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, relu: bool = True):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


@register("segnet", task="segmentation")
@fill_docstring(shapes=SEGMENTER_SHAPES)
def segnet(input_shape: tuple[int, int, int], num_classes: int, width_multiplier: float = 1.0,
           activation: str | None = "softmax", stages: int | None = None,
           name: str = "segnet", variant: str = "vgg16",
           kernel_size: int | None = None) -> keras.Model:
    """SegNet (Badrinarayanan et al. 2015): VGG16-BN encoder, max-unpooling decoder.

    The encoder is the 13 convolutional layers of VGG16, each followed by batch norm and
    ReLU, with a 2x2 max pool after each of the 5 stages. The decoder mirrors it: each
    stage starts with `MaxUnpooling2D`, which puts every value back at the position its
    encoder pool took the maximum from (XLA-compilable, see that layer), then the
    mirrored 3x3 convolutions with batch norm. A 1x1 convolution gives the class scores.
    With all five stages, width 1.0, 3-channel input and CamVid's 11 classes the network
    has 29,451,659 parameters (the paper reports 29.5M).

    `variant="basic"` builds the paper's SegNet-Basic (its section 3.1), the smaller
    network it analyses decoders with: 4 encoders of one convolution (64 filters, no
    bias) with batch norm and ReLU, then a 2x2 max pool; 4 decoders of max unpooling and
    one convolution (64 filters) with batch norm and no ReLU; the 1x1 classifier. The
    paper's 7x7 kernels give a 106-pixel receptive field; by default the kernel is sized
    to the input (`basic_kernel_size`: 5x5 at 64x64, 7x7 from 77 pixels up). Its 9
    convolutions in a row (SegNet's four stages at 64x64 have 20, with no skip
    connection) are the lever tried for SegNet's slow start on small inputs: on visionkit's 1,024 64x64 shapes
    at fit's defaults (3-epoch runs) it reached mean IoU 0.271 at 7x7, where U-Net (16
    filters) reached 0.285 and SegNet at a quarter width 0.229; in 12 epochs, at 5x5,
    0.721 (training 0.765), where SegNet at half width reached 0.646 and U-Net 0.761;
    with a ReLU after each decoder's batch norm (not the paper's) 0.726 (training 0.772),
    no gain beyond run-to-run noise, so the decoders stay linear as in the paper.

    Args:
        input_shape: `(height, width, channels)`, any size (padded inside the model to
            multiples of 32, the output cropped back).
        num_classes: number of classes.
        width_multiplier: scales every layer's filters (1.0 is the paper's network).
            Defaults to 1.0.
        activation: "softmax", "sigmoid" or None (logits). Defaults to "softmax".
        stages: encoder stages (1-5; 5 is the paper's VGG16), or None to size the
            encoder to the input (`default_stages`: the fewest stages whose receptive
            field covers the shorter side, no more than keep the bottleneck at least
            4x4; 5 from 128 pixels up, 4 at 64x64, 3 at 32x32). Defaults to None.
        name: the model's name. Defaults to "segnet".
        variant: "vgg16" (SegNet, the paper's network) or "basic" (SegNet-Basic).
            Defaults to "vgg16".
        kernel_size: SegNet-Basic's kernel size (odd), or None to size it to the input
            (`basic_kernel_size`). Only for `variant="basic"`; SegNet's VGG16 encoder uses
            3x3. Defaults to None.

    {shapes}

    Raises:
        ValueError: for a width multiplier <= 0, stages outside 1..5 (1..4 for
            SegNet-Basic), an unknown variant, or a kernel size that is not an odd
            positive integer or is given for the VGG16 variant.

    Example:

    >>> model = segnet((32, 64, 3), num_classes=3, width_multiplier=0.0625)
    >>> model.output_shape
    (None, 32, 64, 3)
    """
    if not float(width_multiplier) > 0:
        raise ValueError(f"Expected width_multiplier > 0; received {width_multiplier!r}.")
    if variant not in VARIANTS:
        raise ValueError(f"Expected variant as one of {VARIANTS}; received variant={variant!r}.")
    if variant == "basic":
        return _segnet_basic(input_shape, num_classes, width_multiplier, activation, stages,
                             name, kernel_size)
    if kernel_size is not None:
        raise ValueError("kernel_size is SegNet-Basic's (variant='basic'); SegNet's VGG16 "
                         f"encoder uses 3x3. Received kernel_size={kernel_size!r} with "
                         f"variant={variant!r}.")
    if stages is None:
        stages = default_stages(input_shape)
    if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= _STAGES:
        raise ValueError(f"Expected stages as an integer in 1..{_STAGES} or None (sized to "
                         f"the input); received stages={stages!r}.")
    inputs, padded, _ = padded_input("segnet", input_shape, 2 ** stages)
    widths = [max(1, int(round(f * width_multiplier))) for f in VGG_STAGE_FILTERS]
    x = rescale(padded)
    before_pool = []
    for stage, convs in enumerate(VGG_CONVS_PER_STAGE[_VGG16_DEPTH][:stages], start=1):
        for index in range(1, convs + 1):
            x = _conv_bn_relu(x, widths[stage - 1], f"block{stage}_{index}")
        before_pool.append(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{stage}_pool")(x)
    for offset, filters in enumerate(segnet_decoder_filters(width_multiplier)[-stages:]):
        stage = stages - offset
        x = MaxUnpooling2D(name=f"decoder{stage}_unpool")([x, before_pool[stage - 1]])
        for index, width in enumerate(filters, start=1):
            x = _conv_bn_relu(x, width, f"decoder{stage}_{index}")
    outputs = segmentation_output(x, num_classes, activation, inputs=inputs)
    return keras.Model(inputs, outputs, name=name)


def _segnet_basic(input_shape, num_classes, width_multiplier, activation, stages, name,
                  kernel_size):
    """SegNet-Basic: see `segnet(variant="basic")`."""
    if stages is None:
        stages = min(BASIC_STAGES, default_stages(input_shape))
    if isinstance(stages, bool) or not isinstance(stages, int) \
            or not 1 <= stages <= BASIC_STAGES:
        raise ValueError(f"Expected stages as an integer in 1..{BASIC_STAGES} or None for "
                         f"SegNet-Basic; received stages={stages!r}.")
    if kernel_size is None:
        kernel_size = basic_kernel_size(input_shape, stages)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError("Expected kernel_size as an odd positive integer or None (sized to "
                         f"the input); received kernel_size={kernel_size!r}.")
    filters = max(1, int(round(BASIC_FILTERS * width_multiplier)))
    inputs, padded, _ = padded_input("segnet", input_shape, 2 ** stages)
    x = rescale(padded)
    before_pool = []
    for stage in range(1, stages + 1):
        x = _conv_bn_relu(x, filters, f"block{stage}_1", kernel_size)
        before_pool.append(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{stage}_pool")(x)
    for stage in reversed(range(1, stages + 1)):
        x = MaxUnpooling2D(name=f"decoder{stage}_unpool")([x, before_pool[stage - 1]])
        # No ReLU in SegNet-Basic's decoders (the paper's section 3.1).
        x = _conv_bn_relu(x, filters, f"decoder{stage}_1", kernel_size, relu=False)
    outputs = segmentation_output(x, num_classes, activation, inputs=inputs)
    return keras.Model(inputs, outputs, name=name)
