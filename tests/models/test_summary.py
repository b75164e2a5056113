"""`vk.models.summary` against hand-computed values."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import visionkit as vk

FLOAT32_BYTES = 4


def tiny_model(input_shape=(16, 20, 3)) -> keras.Model:
    """conv3x3 -> conv3x3 -> pool2 -> conv3x3 (dilation 2) -> global pool -> dense."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", name="c2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", dilation_rate=2, name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, name="dense")(x)
    return keras.Model(inputs, outputs, name="tiny")


def test_tiny_model_by_hand():
    info = vk.models.summary(tiny_model(), batch_size=4, optimizer="adam")
    # Parameters: c1 3*9*4+4, c2 4*9*6+6, c3 6*9*8+8, dense 8*5+5.
    assert info.trainable_params == 112 + 222 + 440 + 45 == 819
    assert info.non_trainable_params == 0
    assert info.param_bytes == 819 * FLOAT32_BYTES
    assert info.training_param_bytes == 3 * 819 * FLOAT32_BYTES  # Adam: weights x3
    # FLOPs = 2 x multiply-adds: c1 16*20 positions * 4 filters * 27; c2 320*6*36;
    # c3 8*10 positions * 8 filters * 54; dense 8*5.
    assert info.flops == 2 * (320 * 4 * 27 + 320 * 6 * 36 + 80 * 8 * 54 + 8 * 5) == 276_560
    # Activations: input 960, c1 1280, c2 1920, pool 480, c3 640, gap 8, dense 5 elements.
    assert info.activation_bytes == (960 + 1280 + 1920 + 480 + 640 + 8 + 5) * 4 * 4
    # Receptive field: c1 3; c2 3+2=5; pool 5+1=6 (jump 2); c3 (dilated, extent 5) 6+4*2.
    assert info.receptive_field == (14, 14)
    assert info.receptive_field_jump == (2, 2)
    assert info.receptive_field_layer == "c3"
    fields = {layer.name: layer.receptive_field for layer in info.layers}
    assert fields["c1"] == (3, 3) and fields["c2"] == (5, 5) and fields["pool"] == (6, 6)
    assert fields["gap"] is None


@pytest.mark.parametrize(("optimizer", "copies"), [
    ("sgd", 1), ("sgd_momentum", 2), ("rmsprop", 2), ("adam", 3), ("adamw", 3),
])
def test_optimizer_rule(optimizer, copies):
    info = vk.models.summary(tiny_model(), optimizer=optimizer)
    assert info.optimizer_copies == copies
    assert info.training_param_bytes == copies * 819 * FLOAT32_BYTES


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.SGD(), keras.optimizers.SGD(momentum=0.9), keras.optimizers.RMSprop(),
    keras.optimizers.RMSprop(momentum=0.9, centered=True), keras.optimizers.Adam(),
    keras.optimizers.Adam(amsgrad=True), keras.optimizers.AdamW(), keras.optimizers.Nadam(),
])
def test_optimizer_rule_matches_the_slots_keras_creates(optimizer):
    model = vk.models.build("resnet18", (32, 32, 3), 3, width_multiplier=0.125)
    info = vk.models.summary(model, optimizer=optimizer)
    optimizer.build(model.trainable_variables)
    slot_elements = sum(int(np.prod(v.shape)) for v in optimizer.variables if len(v.shape))
    assert slot_elements == (info.optimizer_copies - 1) * info.trainable_params


def test_unknown_optimizer_suggests_close_names():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adma'.*'adam'"):
        vk.models.summary(tiny_model(), optimizer="adma")


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=0"):
        vk.models.summary(tiny_model(), batch_size=0)


def test_strided_non_square_and_transposed_convolutions():
    inputs = keras.Input((16, 16, 2))
    x = keras.layers.Conv2D(3, (3, 5), strides=(1, 2), padding="same", name="wide")(inputs)
    x = keras.layers.Conv2DTranspose(4, 3, strides=(1, 2), padding="same", name="up")(x)
    info = vk.models.summary(keras.Model(inputs, x))
    # wide: (3, 5), jump (1, 2). up: extent 3, strides (1, 2): + (ceil(3/1)-1)*1 = 2 rows,
    # + (ceil(3/2)-1)*2 = 2 columns; jump (1, 2/2).
    assert info.receptive_field == (5, 7)
    assert info.receptive_field_jump == (1, 1)
    assert info.receptive_field_layer == "up"
    # wide: 16*8 positions * 3 filters * 15 * 2 channels; up: every input pixel (16*8)
    # scatters a 3x3 kernel of 3 -> 4 channels.
    assert info.flops == 2 * (128 * 3 * 15 * 2 + 128 * 3 * 9 * 4)


def test_depthwise_and_separable_flops():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(inputs)
    y = keras.layers.SeparableConv2D(6, 3, padding="same", name="sep")(inputs)
    info = vk.models.summary(keras.Model(inputs, [x, y]))
    flops = {layer.name: layer.flops for layer in info.layers}
    assert flops["dw"] == 2 * 64 * 4 * 2 * 9
    assert flops["sep"] == 2 * 64 * 4 * 9 + 2 * 64 * 4 * 6  # depthwise + pointwise


def test_receptive_field_takes_the_widest_path():
    inputs = keras.Input((32, 32, 3))
    narrow = keras.layers.Conv2D(4, 1, name="narrow")(inputs)
    wide = keras.layers.Conv2D(4, 3, padding="same", name="wide_a")(inputs)
    wide = keras.layers.Conv2D(4, 3, padding="same", name="wide_b")(wide)
    merged = keras.layers.Add(name="add")([narrow, wide])
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(merged)
    gate = keras.layers.Conv2D(4, 1, activation="sigmoid", name="excite")(gate)
    outputs = keras.layers.Multiply(name="gated")([merged, gate])
    info = vk.models.summary(keras.Model(inputs, outputs))
    # Last convolutions before the output: narrow (1) and wide_b (5); the gate's 1x1
    # conv sees a global map and does not count.
    assert info.receptive_field == (5, 5)
    assert info.receptive_field_layer == "wide_b"


def test_nested_models_are_walked():
    inner = tiny_model()
    inputs = keras.Input((16, 20, 3))
    outputs = keras.layers.Dense(2, name="outer_dense")(inner(inputs))
    outer = keras.Model(inputs, outputs)
    inner_info = vk.models.summary(inner, batch_size=2)
    info = vk.models.summary(outer, batch_size=2)
    assert info.flops == inner_info.flops + 2 * 5 * 2
    assert info.activation_bytes == inner_info.activation_bytes + 2 * 2 * FLOAT32_BYTES
    assert info.receptive_field == (14, 14)
    assert info.receptive_field_layer == "tiny/c3"
    assert info.total_params == outer.count_params() == 819 + 12


def test_open_input_size_needs_input_shape():
    flexible = tiny_model(input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="unknown size"):
        vk.models.summary(flexible)
    fixed = vk.models.summary(tiny_model(), batch_size=4)
    given = vk.models.summary(flexible, batch_size=4, input_shape=(16, 20, 3))
    assert (given.flops, given.activation_bytes, given.receptive_field) == (
        fixed.flops, fixed.activation_bytes, fixed.receptive_field)


def test_bytes_follow_each_variables_dtype():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, dtype="mixed_float16", name="mixed")(inputs)
    x = keras.layers.Conv2D(4, 3, dtype="float16", name="half")(x)
    info = vk.models.summary(keras.Model(inputs, x), batch_size=1)
    mixed_params, half_params = 3 * 9 * 4 + 4, 4 * 9 * 4 + 4
    assert info.param_bytes == mixed_params * 4 + half_params * 2
    # Outputs: input 8*8*3 float32, mixed 6*6*4 float16, half 4*4*4 float16.
    assert info.activation_bytes == 192 * 4 + 144 * 2 + 64 * 2


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "inception_mini"])
def test_parameter_counts_match_keras(name):
    kwargs = {"width_multiplier": 0.35 if name.startswith("mobilenet") else 0.125}
    model = vk.models.build(name, (32, 32, 3), 3, **kwargs)
    info = vk.models.summary(model)
    assert info.total_params == model.count_params()
    assert info.trainable_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert info.flops > 0 and info.receptive_field is not None


def test_reference_numbers_for_resnet50():
    info = vk.models.summary(vk.models.build("resnet50", (224, 224, 3), 1000))
    # torchvision and fvcore count 4.09e9 multiply-adds for ResNet-50 at 224x224 (the
    # paper's Table 1 gives 3.8e9); the published receptive field of this layout is 427.
    assert 8.1e9 < info.flops < 8.3e9
    assert info.receptive_field == (427, 427)
    assert info.receptive_field_jump == (32, 32)


def test_sequential_and_report():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, name="a"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(8, 3, name="b")])
    info = vk.models.summary(model, batch_size=8)
    assert info.receptive_field == (8, 8) and info.receptive_field_jump == (2, 2)
    text = str(info)
    assert "Receptive field     8 x 8 px, jump 2 x 2 (at b)" in text
    assert f"{info.total_params:,}" in text
    assert "b" in info.table()
    data = json.loads(json.dumps(info.to_dict()))
    assert data["total_params"] == model.count_params()
    assert data["receptive_field"] == [8, 8]


def test_subclassed_models_are_refused():
    class Custom(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="functional and Sequential"):
        vk.models.summary(Custom())


def test_vector_inputs_have_no_receptive_field():
    inputs = keras.Input((10,))
    info = vk.models.summary(keras.Model(inputs, keras.layers.Dense(3)(inputs)), batch_size=2)
    assert info.flops == 2 * 10 * 3
    assert info.receptive_field is None
    assert "none (no convolution)" in str(info)
