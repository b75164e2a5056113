"""The field's classic architectures: parameter counts computed from the papers' layer
tables (not from visionkit's code), their published figures, and their options."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.models.classification.googlenet import (
    AUXILIARY_LOSS_WEIGHTS,
    drop_auxiliary_classifiers,
)
from visionkit.models.layers import CBAM, NonLocalBlock, SqueezeExcitation, StochasticDepth


def conv(k: int, cin: int, cout: int, bias: bool = True, groups: int = 1) -> int:
    return k * k * cin // groups * cout + (cout if bias else 0)


def dense(cin: int, cout: int) -> int:
    return cin * cout + cout


def trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- AlexNet and ZFNet ------------------------------------------------------------------

def alexnet_table_count(filters, groups, num_classes=1000, fc=4096):
    kernels = (11, 5, 3, 3, 3)
    channels = (3, *filters)
    total = sum(conv(k, cin, cout, groups=g)
                for k, cin, cout, g in zip(kernels, channels, filters, groups))
    return total + dense(6 * 6 * filters[-1], fc) + dense(fc, fc) + dense(fc, num_classes)


def test_alexnet_single_tower_has_the_published_count():
    expected = alexnet_table_count((64, 192, 384, 256, 256), (1, 1, 1, 1, 1))
    assert expected == 61_100_840  # torchvision's alexnet; Krizhevsky 2014
    model = vk.models.build("alexnet", (224, 224, 3), 1000)
    assert model.count_params() == expected
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)


@pytest.mark.slow
def test_alexnet_two_towers_follow_figure_2():
    # conv2, conv4, conv5 connect only within a tower (half of the input channels).
    expected = alexnet_table_count((96, 256, 384, 384, 256), (1, 2, 1, 2, 2))
    model = vk.models.build("alexnet", (224, 224, 3), 1000, towers=2)
    assert model.count_params() == expected == 60_965_224
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)  # Fig. 2's 55x55
    assert model.get_layer("conv2").groups == 2 and model.get_layer("conv3").groups == 1
    assert "norm1" in [layer.name for layer in model.layers]


def test_alexnet_towers_argument_is_checked():
    with pytest.raises(ValueError, match="towers=3"):
        vk.models.build("alexnet", (64, 64, 3), 3, towers=3)


@pytest.mark.slow
def test_zfnet_map_sizes_follow_figure_3():
    model = vk.models.build("zfnet", (224, 224, 3), 1000)
    sizes = [model.get_layer(n).output.shape[1] for n in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    kernels = (7, 5, 3, 3, 3)
    filters = (96, 256, 384, 384, 256)
    expected = sum(conv(k, cin, cout) for k, cin, cout in zip(kernels, (3, *filters), filters))
    expected += dense(6 * 6 * 256, 4096) + dense(4096, 4096) + dense(4096, 1000)
    assert model.count_params() == expected


# --- GoogLeNet ----------------------------------------------------------------------------

# Table 1 of Szegedy et al. 2015: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj,
# and the "params" column (weights only, in units of 1,024).
GOOGLENET_TABLE = {
    "inception3a": ((64, 96, 128, 16, 32, 32), 159),
    "inception3b": ((128, 128, 192, 32, 96, 64), 380),
    "inception4a": ((192, 96, 208, 16, 48, 64), 364),
    "inception4b": ((160, 112, 224, 24, 64, 64), 437),
    "inception4c": ((128, 128, 256, 24, 64, 64), 463),
    "inception4d": ((112, 144, 288, 32, 64, 64), 580),
    "inception4e": ((256, 160, 320, 32, 128, 128), 840),
    "inception5a": ((256, 160, 320, 32, 128, 128), 1072),
    "inception5b": ((384, 192, 384, 48, 128, 128), 1388),
}


def inception_count(cin, filters, bias=True):
    one, r3, n3, r5, n5, proj = filters
    return (conv(1, cin, one, bias) + conv(1, cin, r3, bias) + conv(3, r3, n3, bias)
            + conv(1, cin, r5, bias) + conv(5, r5, n5, bias) + conv(1, cin, proj, bias))


def test_googlenet_without_auxiliary_heads_has_the_published_count():
    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    weights_only = total - 64 - 64 - 192
    channels = 192
    for filters, _ in GOOGLENET_TABLE.values():
        total += inception_count(channels, filters)
        weights_only += inception_count(channels, filters, bias=False)
        channels = filters[0] + filters[2] + filters[4] + filters[5]
    total += dense(channels, 1000)
    weights_only += channels * 1000
    assert channels == 1024
    # The table's own "params" column (weights only, in units of 1,024; some rows, such
    # as 4c and 5a, are misprinted) adds up to within 1% of the weights of its layers.
    column = (2.7 + 112 + sum(kilo for _, kilo in GOOGLENET_TABLE.values()) + 1000) * 1024
    assert weights_only == pytest.approx(column, rel=0.01)
    model = vk.models.build("googlenet", (224, 224, 3), 1000)
    assert model.count_params() == total == 6_998_552
    assert model.get_layer("inception5b_concat").output.shape[1:] == (7, 7, 1024)


@pytest.mark.slow
def test_googlenet_auxiliary_classifiers_train_and_are_dropped_for_export():
    keras.utils.set_random_seed(0)
    model = vk.models.build("googlenet", (224, 224, 3), 1000, auxiliary_classifiers=True)
    plain_count = vk.models.build("googlenet", (224, 224, 3), 1000).count_params()
    # Section 5: 5x5/3 average pool on 14x14 -> 4x4, 1x1 conv 128, dense 1024, classifier.
    aux = conv(1, 512, 128) + dense(4 * 4 * 128, 1024) + dense(1024, 1000)
    assert model.get_layer("aux1_conv").input.shape[-1] == 512  # 4a's output
    aux2_input = model.get_layer("aux2_conv").input.shape[-1]
    assert aux2_input == 528  # 4d's output
    aux += conv(1, 528, 128) + dense(4 * 4 * 128, 1024) + dense(1024, 1000)
    assert model.count_params() == plain_count + aux
    inference = drop_auxiliary_classifiers(model)
    assert inference.count_params() == plain_count
    assert drop_auxiliary_classifiers(inference) is inference


@pytest.mark.slow
def test_googlenet_auxiliary_losses_reach_the_trunk():
    keras.utils.set_random_seed(0)
    model = vk.models.build("googlenet", (32, 32, 3), 3, width_multiplier=0.125,
                            auxiliary_classifiers=True)
    loss = "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss={k: loss for k in model.output},
                  loss_weights=AUXILIARY_LOSS_WEIGHTS)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    labels = np.array([0, 2])
    before = {name: np.array(model.get_layer(name).kernel)
              for name in ("aux1", "aux2", "predictions", "conv1")}
    logs = model.train_on_batch(images, {k: labels for k in model.output}, return_dict=True)
    for name, kernel in before.items():
        assert not np.array_equal(kernel, np.array(model.get_layer(name).kernel)), name
    # Keras's total is the weighted sum: 1 x main + 0.3 x each auxiliary loss.
    weighted = (logs["predictions_loss"] + 0.3 * logs["aux1_loss"] + 0.3 * logs["aux2_loss"])
    assert logs["loss"] == pytest.approx(weighted, rel=1e-4)
    exported = drop_auxiliary_classifiers(model)
    np.testing.assert_allclose(np.asarray(exported(images)),
                               np.asarray(model(images)["predictions"]), atol=1e-6)


# --- Wide ResNet, DenseNet-BC ------------------------------------------------------------

def batch_norm(channels: int) -> int:
    return 2 * channels  # learned gamma and beta


@pytest.mark.slow
def test_wide_resnet_28_10_has_the_published_count():
    depth, k = 28, 10
    n = (depth - 4) // 6
    total = conv(3, 3, 16, bias=False)
    cin = 16
    for width in (16 * k, 32 * k, 64 * k):
        for block in range(n):
            total += batch_norm(cin) + conv(3, cin, width, False)
            total += batch_norm(width) + conv(3, width, width, False)
            if block == 0 and cin != width:
                total += conv(1, cin, width, False)
            cin = width
    total += batch_norm(cin) + dense(cin, 10)
    assert total == 36_479_194  # "36.5M" in Table 4 of Zagoruyko & Komodakis
    model = vk.models.build("wide_resnet", (32, 32, 3), 10, depth=28, widen_factor=10)
    assert trainable(model) == total


def test_wide_resnet_depth_is_checked():
    with pytest.raises(ValueError, match="depth=27"):
        vk.models.build("wide_resnet", (32, 32, 3), 10, depth=27, widen_factor=1)


@pytest.mark.slow
def test_densenet_bc_121_has_the_published_count():
    growth, blocks = 32, (6, 12, 24, 16)
    total = conv(7, 3, 2 * growth, False) + batch_norm(2 * growth)
    channels = 2 * growth
    for index, layers in enumerate(blocks):
        for _ in range(layers):
            total += batch_norm(channels) + conv(1, channels, 4 * growth, False)
            total += batch_norm(4 * growth) + conv(3, 4 * growth, growth, False)
            channels += growth
        if index < 3:
            total += batch_norm(channels) + conv(1, channels, channels // 2, False)
            channels //= 2
    total += batch_norm(channels) + dense(channels, 1000)
    assert total == 7_978_856  # the paper's 8.0M (Table 1); torchvision's densenet121
    model = vk.models.build("densenet_bc", (224, 224, 3), 1000)
    assert trainable(model) == total
    reference = keras.applications.DenseNet121(weights=None, input_shape=(224, 224, 3))
    assert model.count_params() == reference.count_params()


def test_densenet_bc_growth_rate_and_compression():
    model = vk.models.build("densenet_bc", (32, 32, 3), 3, blocks=(2, 2, 2, 2),
                            growth_rate=6, compression=0.75)
    # Stem 12; block 2 layers of 6 -> 24; transition floor(0.75 * 24) = 18.
    assert model.get_layer("pool2_conv").output.shape[-1] == 18
    assert model.get_layer("conv3_block2_concat").output.shape[-1] == 18 + 12
    with pytest.raises(ValueError, match="compression=1.5"):
        vk.models.build("densenet_bc", (32, 32, 3), 3, compression=1.5)


# --- ResNet family options ------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18"])
def test_stochastic_depth_survival_decays_linearly(name):
    model = vk.models.build(name, (32, 32, 3), 3, width_multiplier=0.125,
                            stochastic_depth=0.5)
    survivals = [layer.survival_probability for layer in model.layers
                 if isinstance(layer, StochasticDepth)]
    blocks = len(survivals)
    assert blocks in (8, 16)
    np.testing.assert_allclose(survivals, [1 - 0.5 * (i + 1) / blocks for i in range(blocks)])
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    keras.utils.set_random_seed(1)
    first = np.asarray(model(images, training=True))
    second = np.asarray(model(images, training=True))
    assert not np.allclose(first, second)  # different blocks dropped


@pytest.mark.parametrize(("attention", "layer_type", "count"), [
    ("se", SqueezeExcitation, 8), ("cbam", CBAM, 8), ("non_local", NonLocalBlock, 1)])
@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18"])
def test_attention_option_on_the_resnet_family(name, attention, layer_type, count):
    model = vk.models.build(name, (32, 32, 3), 3, width_multiplier=0.25, attention=attention)
    found = [layer for layer in model.layers if isinstance(layer, layer_type)]
    assert len(found) == count
    if attention == "non_local":
        assert found[0].name == "conv4_non_local"
    else:  # on the residual branch, before the sum
        assert all(layer.output in model.get_layer(layer.name[:-len(attention) - 1] + "_add")
                   .input for layer in found)


def test_resnet_family_options_are_checked():
    with pytest.raises(ValueError, match="attention='transformer'"):
        vk.models.build("resnet18", (32, 32, 3), 3, attention="transformer")
    with pytest.raises(ValueError, match="stochastic_depth=1.0"):
        vk.models.build("preact_resnet18", (32, 32, 3), 3, stochastic_depth=1.0)


def test_preact_units_put_batch_norm_before_each_convolution():
    model = vk.models.build("preact_resnet18", (32, 32, 3), 3, width_multiplier=0.25)
    block = model.get_layer("conv3_block1_1_conv")
    assert block.input is model.get_layer("conv3_block1_preact_relu").output
    assert model.get_layer("conv3_block1_0_conv").input is block.input  # projection
    add = model.get_layer("conv3_block2_add")
    assert add.input[0] is model.get_layer("conv3_block1_add").output  # clean identity


def test_attention_gates_in_the_unet_decoder():
    model = vk.models.build("unet", (32, 48, 3), 3, depth=2, filters=4, attention="gate")
    gate = model.get_layer("up1_attention")
    assert gate.input[0].shape[1:3] == (32, 48) and gate.input[1].shape[1:3] == (16, 24)
    assert model.get_layer("up1_concat").input[0] is gate.output
    backbone_unet = vk.models.build("unet_resnet18", (32, 64, 3), 2, attention="gate",
                                    decoder_filters=(8,) * 5, width_multiplier=0.125)
    assert len([n for n in (layer.name for layer in backbone_unet.layers)
                if n.endswith("_attention")]) == 4
    with pytest.raises(ValueError, match="attention='se'"):
        vk.models.build("unet", (32, 48, 3), 3, depth=2, filters=4, attention="se")


# --- summary: parameters, FLOPs, receptive field -----------------------------------------

def test_summary_of_alexnet_against_its_layer_table():
    model = vk.models.build("alexnet", (224, 224, 3), 1000)
    info = vk.models.summary(model)
    # Multiply-adds: output positions x kernel area x input x output channels.
    convolutions = [(55, 11, 3, 64), (27, 5, 64, 192), (13, 3, 192, 384),
                    (13, 3, 384, 256), (13, 3, 256, 256)]
    macs = sum(size * size * k * k * cin * cout for size, k, cin, cout in convolutions)
    macs += 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert macs == 714_188_480  # the 0.71 GMACs usually quoted for AlexNet
    assert info.flops == 2 * macs
    assert info.total_params == 61_100_840
    # conv1 11 (jump 4); pool1 +2x4; conv2 +4x8; pool2 +2x8; conv3..5 +2x16 each.
    assert info.receptive_field == (11 + 8 + 32 + 16 + 96,) * 2 == (163, 163)


def test_summary_counts_the_attention_layers_flops():
    inputs = keras.Input((8, 12, 16))
    se = SqueezeExcitation(ratio=4)
    non_local = NonLocalBlock(inter_channels=8)
    model = keras.Model(inputs, non_local(se(inputs)))
    info = vk.models.summary(model)
    positions = 8 * 12
    expected = 2 * (16 * 4 + 4 * 16) + 2 * (4 * positions * 16 * 8 + 2 * positions ** 2 * 8)
    assert info.flops == expected
    assert info.total_params == model.count_params()


@pytest.mark.parametrize("name", ["zfnet", "googlenet", "densenet_bc", "preact_resnet18",
                                  "wide_resnet"])
def test_summary_reports_every_new_builder(name):
    from visionkit.testing import tiny_model

    model = tiny_model(name)
    info = vk.models.summary(model)
    assert info.total_params == model.count_params()
    assert info.flops > 0 and info.receptive_field is not None
