"""Every registered classification model, at a tiny size; exact parameter counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.testing import random_images, run_model_test, tiny_input_shape, tiny_model_kwargs

# Non-square on purpose: a model that mixes up height and width fails here.
TINY_SHAPE = (32, 40, 3)
NUM_CLASSES = 3
BATCH = 2
# The large keras.applications models (over 4M parameters) take 5-18 s each here, so
# `make test-heavy` runs them; `make test` keeps at least one of each family.
HEAVY = {"densenet121", "efficientnet_b0", "efficientnet_b1", "mobilenet_v2",
         "mobilenet_v3_large", "preact_resnet50", "resnet50", "resnet50_v2"}


def classifiers():
    return [pytest.param(name, marks=pytest.mark.heavy) if name in HEAVY else name
            for name in vk.models.available("classification")]


@pytest.mark.parametrize("name", classifiers())
def test_classifier_builds_trains_and_round_trips(name):
    # Shape, float32 softmax, one step moving the stem and the classifier, .keras round
    # trip without custom_objects (atol 1e-6): visionkit.testing.run_model_test.
    model = run_model_test(name, tiny_input_shape(name), NUM_CLASSES, batch_size=BATCH,
                           init_kwargs=tiny_model_kwargs(name))
    assert model.get_layer("predictions").dtype == "float32"


@pytest.mark.parametrize("name", vk.models.available("classification"))
def test_classifier_logits(name):
    model = vk.models.build(name, input_shape=tiny_input_shape(name), num_classes=NUM_CLASSES,
                            activation=None, **tiny_model_kwargs(name))
    assert model.get_layer("predictions").get_config()["activation"] == "linear"
    assert model.output_shape == (None, NUM_CLASSES)


@pytest.mark.parametrize(("name", "expected"), [
    ("vgg16", 138_357_544),      # Simonyan & Zisserman; keras.applications.VGG16
    ("resnet50", 25_636_712),    # keras.applications.ResNet50 (conv biases + batch norm)
    ("vgg11", 132_863_336),      # configuration A of the paper (torchvision's count)
    ("squeezenet", 1_235_496),   # SqueezeNet v1.1 (torchvision's squeezenet1_1)
    # torchvision's resnet18 (He et al.'s 11.7M): 11,689,512, + 4,800 convolution biases
    # (one per batch-normed channel) + 9,600 batch-norm moving means and variances.
    ("resnet18", 11_703_912),
])
def test_exact_parameter_counts(name, expected):
    model = vk.models.build(name, input_shape=(224, 224, 3), num_classes=1000)
    assert model.count_params() == expected


def test_resnet50_matches_keras_applications_count():
    reference = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    assert reference.count_params() == 25_636_712


def test_own_classifier_is_flat_and_shares_the_backbone_layers():
    classifier = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, width_multiplier=0.125)
    backbone = vk.models.build_backbone("resnet18", TINY_SHAPE, width_multiplier=0.125)
    assert not any(isinstance(layer, keras.Model) for layer in classifier.layers)
    for layer in backbone.layers[1:]:
        assert classifier.get_layer(layer.name).output.shape == layer.output.shape
    assert classifier.get_layer("avg_pool").input.shape == backbone.output["P5"].shape


@pytest.mark.parametrize(("side", "stem_pool", "p5_side"), [
    (64, True, 2), (64, False, 4), (127, False, 8), (224, True, 7)])
def test_resnet_stem_pool_sets_the_last_map(side, stem_pool, p5_side):
    """With the stem's max pool, 1/32 of the input (224 -> 7, the paper's); without it,
    1/16: 64 -> 32 (stride-2 stem) -> 32 -> 16 -> 8 -> 4, and 127 -> 64 -> ... -> 8."""
    model = vk.models.build("resnet18", (side, side, 3), NUM_CLASSES, width_multiplier=0.125,
                            stem_pool=stem_pool)
    assert model.get_layer("avg_pool").input.shape[1:3] == (p5_side, p5_side)
    assert any(layer.name == "pool1_pool" for layer in model.layers) == stem_pool


def test_resnet_deep_stem_is_three_3x3_convolutions():
    """ResNet-C (He et al. 2019, "Bag of Tricks", section 4.1): conv1's 7x7 stride-2
    convolution becomes 3x3 stride 2 (32 filters), 3x3 (32), 3x3 (64), times the width;
    P1 and everything after it keep their shapes.

    Hand-counted at width 1/8 (8 stem filters): the standard conv1 has 7*7*3*8 + 8 =
    1,184 weights and an 8-channel batch norm (32): 1,216; the deep one 3*3*3*4 + 4 =
    112, 3*3*4*4 + 4 = 148 and 3*3*4*8 + 8 = 296, batch norms of 4, 4, 8 channels (16,
    16, 32): 620, so 596 fewer (at width 1, 19,424 more)."""
    options = {"width_multiplier": 0.125}
    standard = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, stem="standard", **options)
    deep = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, stem="deep", **options)
    assert standard.count_params() - deep.count_params() == 596
    kernels = [(deep.get_layer(name).kernel_size, deep.get_layer(name).strides,
                deep.get_layer(name).filters) for name in ("conv1_1_conv", "conv1_2_conv",
                                                            "conv1_conv")]
    assert kernels == [((3, 3), (2, 2), 4), ((3, 3), (1, 1), 4), ((3, 3), (1, 1), 8)]
    for name in ("conv1_relu", "avg_pool"):
        assert deep.get_layer(name).output.shape == standard.get_layer(name).output.shape
    with pytest.raises(ValueError, match="stem='wide'"):
        vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, stem="wide", **options)


@pytest.mark.parametrize(("side", "backbone_weights", "stem"), [
    (64, False, "deep"), (127, False, "deep"), (128, False, "standard"),
    (224, False, "standard"), (64, True, "standard")])
def test_resnet_stem_is_sized_to_the_input(tmp_path, side, backbone_weights, stem):
    """By default the stem is the deep one below 128 pixels (where the paper's 7x7 stem
    trained at chance for half of fit's epochs), the paper's from 128 on, and the
    backbone's (standard) when the trunk loads `build_backbone`'s weights."""
    options = {"width_multiplier": 0.125}
    if backbone_weights:
        path = str(tmp_path / "backbone.weights.h5")
        vk.models.build_backbone("resnet18", (side, side, 3), **options).save_weights(path)
        options["backbone_weights"] = path
    model = vk.models.build("resnet18", (side, side, 3), NUM_CLASSES, **options)
    names = {layer.name for layer in model.layers}
    assert ("conv1_1_conv" in names) == (stem == "deep")
    assert model.get_layer("conv1_conv").kernel_size == ((3, 3) if stem == "deep" else (7, 7))


def test_resnet_weights_saved_with_the_standard_stem_name_the_stem_option(tmp_path):
    """A 64x64 model's file saved when the stem was the paper's at every size fails to
    load into today's default (deep) with a message naming stem='standard', and loads
    with it (same predictions)."""
    options = {"width_multiplier": 0.125}
    path = str(tmp_path / "old.weights.h5")
    old = vk.models.build("resnet18", (64, 64, 3), NUM_CLASSES, stem="standard", **options)
    old.save_weights(path)
    with pytest.raises(ValueError, match="stem='standard'"):
        vk.models.build("resnet18", (64, 64, 3), NUM_CLASSES, weights=path, **options)
    loaded = vk.models.build("resnet18", (64, 64, 3), NUM_CLASSES, weights=path,
                             stem="standard", **options)
    images = random_images((64, 64, 3))
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               old.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [{"zero_init_residual": True}, {}], ids=["zero", "default"])
def test_resnet_zero_init_residual_starts_every_block_as_its_shortcut(options):
    """Goyal et al. (2017), section 5.1: with the branch's last batch-norm gamma at 0 an
    identity block's output is its input (already ReLU'd) at initialisation, in training
    and inference mode; with the paper's gamma = 1 (the default) it is not."""
    zero_init_residual = bool(options)
    keras.utils.set_random_seed(0)
    model = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, width_multiplier=0.125,
                            **options)
    blocks = ["conv2_block1_out", "conv2_block2_out", "conv5_block1_out", "conv5_block2_out"]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in blocks])
    images = random_images(TINY_SHAPE, BATCH)
    for training in (False, True):
        before2, after2, before5, after5 = (np.asarray(t) for t in probe(images,
                                                                          training=training))
        assert np.abs(before5).max() > 0
        for before, after in ((before2, after2), (before5, after5)):
            assert np.allclose(after, before) == zero_init_residual
    gammas = model.get_layer("conv3_block1_2_bn").gamma.numpy()
    assert (gammas == 0).all() == zero_init_residual
    assert (model.get_layer("conv3_block1_1_bn").gamma.numpy() == 1).all()


def test_application_classifier_nests_its_backbone():
    model = vk.models.build("mobilenet_v3_small", (32, 32, 3), NUM_CLASSES,
                            width_multiplier=0.35)
    backbone = model.get_layer("mobilenet_v3_small_backbone")
    assert isinstance(backbone, keras.Model)
    assert sorted(backbone.output) == ["P1", "P2", "P3", "P4", "P5"]


@pytest.mark.parametrize(("name", "options", "p5_consumer"), [
    ("resnet18", {"width_multiplier": 0.125}, "avg_pool"),
    ("vgg11", {"width_multiplier": 0.125, "batch_norm": True}, "flatten"),
    ("mobilenet_v3_small", {"width_multiplier": 0.35}, None),
])
def test_backbone_weights_go_into_the_classifier(name, options, p5_consumer, tmp_path):
    keras.utils.set_random_seed(1)
    backbone = vk.models.build_backbone(name, (32, 32, 3), **options)
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(path)
    extra = {"fc_units": 16} if name.startswith("vgg") else {}
    keras.utils.set_random_seed(2)
    model = vk.models.build(name, (32, 32, 3), NUM_CLASSES, backbone_weights=path,
                            **options, **extra)
    if p5_consumer is None:  # keras.applications family: the nested backbone model
        features = model.get_layer(f"{name}_backbone")
        outputs = features.output["P5"]
    else:  # own family: the same layers, inline
        features, outputs = model, model.get_layer(p5_consumer).input
    p5 = keras.Model(features.input, outputs)
    images = random_images((32, 32, 3), BATCH)
    np.testing.assert_allclose(np.asarray(p5(images)), np.asarray(backbone(images)["P5"]),
                               atol=1e-5)


def test_whole_model_weights_round_trip(tmp_path):
    keras.utils.set_random_seed(2)
    model = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, width_multiplier=0.125)
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    keras.utils.set_random_seed(3)
    loaded = vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, width_multiplier=0.125,
                             weights=path)
    images = random_images(TINY_SHAPE, BATCH)
    np.testing.assert_array_equal(np.asarray(loaded(images)), np.asarray(model(images)))


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'resnet19'.*'resnet18'"):
        vk.models.build("resnet19", TINY_SHAPE, NUM_CLASSES)


@pytest.mark.parametrize("name", ["lenet5", "squeezenet"])
def test_imagenet_weights_are_refused_by_models_without_them(name):
    with pytest.raises(ValueError, match=r"names pretrained weights.*visionkit weights list"):
        vk.models.build(name, (64, 64, 3), NUM_CLASSES, weights="imagenet")


def test_imagenet_backbone_weights_are_refused_for_own_families():
    with pytest.raises(ValueError, match=r"own families.*no 'imagenet' weights.*mobilenet_v2"):
        vk.models.build("resnet18", (64, 64, 3), NUM_CLASSES, backbone_weights="imagenet")


def test_imagenet_offline_without_the_file_names_file_cache_and_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("VISIONKIT_WEIGHTS_OFFLINE", "1")
    monkeypatch.delenv("VISIONKIT_WEIGHTS_MIRROR", raising=False)
    expected = tmp_path / "models" / "efficientnetb0_notop.h5"
    with pytest.raises(vk.models.pretrained.WeightsUnavailableError) as caught:
        vk.models.build("efficientnet_b0", (64, 64, 3), NUM_CLASSES, weights="imagenet")
    message = str(caught.value)
    assert "'efficientnetb0_notop.h5'" in message and repr(str(expected)) in message
    assert "VISIONKIT_WEIGHTS_MIRROR" in message


@pytest.mark.parametrize(("name", "shape", "minimum"), [
    ("lenet5", (27, 40, 3), 28),
    ("vgg16", (31, 64, 3), 32),
    ("resnet18", (64, 16, 3), 32),
    ("squeezenet", (30, 30, 3), 32),
    ("inception_mini", (8, 8, 3), 16),
    ("mobilenet_v2", (24, 64, 3), 32),
])
def test_too_small_inputs_are_refused(name, shape, minimum):
    with pytest.raises(ValueError, match=rf"at least {minimum}x{minimum}.*{shape[0]}"):
        vk.models.build(name, shape, NUM_CLASSES)


def test_bad_activation_names_the_value():
    with pytest.raises(ValueError, match="activation='relu'"):
        vk.models.build("resnet18", TINY_SHAPE, NUM_CLASSES, activation="relu")


def test_lenet5_shapes_follow_the_paper():
    model = vk.models.build("lenet5", (28, 28, 3), 10)
    shapes = {name: model.get_layer(name).output.shape[1:]
              for name in ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert shapes == {"c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16),
                      "s4": (5, 5, 16), "c5": (1, 1, 120), "f6": (84,)}


def test_application_classifier_takes_grey_images_nowhere():
    with pytest.raises(ValueError, match="3 channels"):
        vk.models.build("densenet121", (32, 32, 1), NUM_CLASSES)


def test_lenet5_paper_layers_without_batch_norm():
    """The paper's C1..F6 parameter counts (with full C3 connections, 3 input channels):
    C1 (5*5*3+1)*6, C3 (5*5*6+1)*16, C5 (5*5*16+1)*120, F6 (120+1)*84, output (84+1)*10;
    its tanh and average subsampling. The default's modern layers: batch norm after
    every convolution and F6, ReLU and max pooling."""
    paper = vk.models.build("lenet5", (28, 28, 3), 10, batch_norm=False)
    expected = (76 * 6) + (151 * 16) + (401 * 120) + (121 * 84) + (85 * 10)
    assert paper.count_params() == expected
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in paper.layers)
    assert {paper.get_layer(name).get_config()["activation"]
            for name in ("c1", "c3", "c5", "f6")} == {"tanh"}
    assert isinstance(paper.get_layer("s2"), keras.layers.AveragePooling2D)
    default = vk.models.build("lenet5", (28, 28, 3), 10)
    assert [layer.name for layer in default.layers
            if isinstance(layer, keras.layers.BatchNormalization)] == [
                "c1_bn", "c3_bn", "c5_bn", "f6_bn"]
    assert all(isinstance(default.get_layer(name), keras.layers.ReLU)
               for name in ("c1", "c3", "c5", "f6"))
    assert isinstance(default.get_layer("s4"), keras.layers.MaxPooling2D)
    # Batch norm replaces each bias: 2 trainable and 2 moving values per channel.
    assert default.count_params() == expected - (6 + 16 + 120 + 84) + 4 * (6 + 16 + 120 + 84)


def test_lenet5_replicates_c5_over_larger_inputs():
    """Above 28x28 C5 is a map (10x10 at 64x64) and F6 reads each map's maximum over
    positions: the parameter count is the paper's at every size, and an object moved by
    8 pixels (two S2/S4 strides) gets the same scores, which a flattened C5 would not.
    (At 96x96 C5 is 18x18 and its 32-pixel windows that see the object stay inside the
    map in both places.)"""
    small = vk.models.build("lenet5", (28, 28, 3), 5)
    assert vk.models.build("lenet5", (64, 64, 3), 5).get_layer("c5").output.shape[1:] == (
        10, 10, 120)
    model = vk.models.build("lenet5", (96, 96, 3), 5)
    assert model.count_params() == small.count_params()
    images = np.zeros((2, 96, 96, 3), np.uint8)
    images[0, 36:54, 38:50] = (200, 40, 90)
    images[1, 44:62, 46:58] = (200, 40, 90)
    maps = keras.Model(model.input, [model.get_layer("c5").output, model.output])
    c5, scores = (np.asarray(value) for value in maps(images, training=False))
    np.testing.assert_allclose(c5[0, :16, :16], c5[1, 2:, 2:], atol=1e-5)
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-6)
    paper = vk.models.build("lenet5", (64, 64, 3), 5, batch_norm=False)
    assert paper.get_layer("c5").output.shape[1:] == (10, 10, 120)
    assert paper.count_params() == vk.models.build(
        "lenet5", (28, 28, 3), 5, batch_norm=False).count_params()
