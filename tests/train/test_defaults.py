"""Training defaults per task: the table fit reads, the warmup-cosine schedule, the range
test and models sized to their input."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.models.classification.simple_cnn import default_filters, receptive_field
from visionkit.models.segmentation.segnet import (
    BASIC_KERNEL_SIZE,
    basic_kernel_size,
    basic_receptive_field,
    default_stages,
    encoder_receptive_field,
)
from visionkit.train.defaults import TASK_DEFAULTS, choose_defaults, warmup_epochs_for
from visionkit.train.lr_finder import _read_off, longest_valley

TINY = {"filters": (8, 16)}


def test_every_option_left_unset_comes_from_the_task_row():
    for task, row in TASK_DEFAULTS.items():
        for optimizer, rate in row.learning_rates.items():
            chosen = choose_defaults(task, optimizer=optimizer)
            assert chosen.epochs == row.epochs
            assert chosen.learning_rate == rate
            assert chosen.schedule == "cosine"
            assert chosen.warmup_epochs == pytest.approx(min(3.0, row.epochs / 10))
            assert chosen.weight_decay == row.weight_decay.get(optimizer)
            assert chosen.augment == row.augment
            assert chosen.precise_bn == row.precise_bn
    # detection's default run was measured with Keras's moving averages
    assert [task for task, row in TASK_DEFAULTS.items() if not row.precise_bn] == ["detection"]


def test_segmentations_adam_decays_its_weights_as_adamw_does():
    from visionkit.train.optimizers import make_optimizer

    chosen = choose_defaults("segmentation", optimizer="adam")
    assert chosen.weight_decay == 1e-4 and "weight_decay" in chosen.defaulted
    assert choose_defaults("classification", optimizer="adam").weight_decay is None
    # Keras's Adam with a weight decay takes AdamW's steps: the same variable after three
    # updates by the same gradients, and different from Adam without the decay.
    results = []
    for optimizer in (make_optimizer("adam", 3e-3, weight_decay=chosen.weight_decay),
                      keras.optimizers.AdamW(3e-3, weight_decay=1e-4),
                      make_optimizer("adam", 3e-3)):
        variable = keras.Variable([[2.0, -3.0], [0.5, 40.0]])
        for step in range(3):
            optimizer.apply_gradients([(keras.ops.full((2, 2), 0.1 * (step + 1)), variable)])
        results.append(keras.ops.convert_to_numpy(variable))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
    assert abs(results[0][1, 1] - results[2][1, 1]) > 1e-5  # the decay did act


def test_explicit_arguments_always_win():
    chosen = choose_defaults("segmentation", epochs=40, optimizer="sgd", learning_rate=0.2,
                            schedule="cosine", warmup_epochs=0.0, weight_decay=0.0,
                            augment="geometric", precise_bn=False)
    assert (chosen.epochs, chosen.learning_rate, chosen.warmup_epochs, chosen.weight_decay,
            chosen.augment, chosen.precise_bn) == (40, 0.2, 0.0, 0.0, "geometric", False)
    assert chosen.defaulted == ()
    assert "no defaults" in chosen.describe()
    # "constant" turns the schedule (and so the default warmup) off
    constant = choose_defaults("classification", schedule="constant")
    assert constant.schedule is None and constant.warmup_epochs == 0.0
    # the data's own augmentation is kept under "auto"
    assert choose_defaults("classification", data_augment="geometric").augment == "geometric"
    # an optimizer instance keeps its own rate, schedule and weight decay
    instance = choose_defaults("classification", optimizer=keras.optimizers.SGD(0.3))
    assert instance.learning_rate is None and instance.schedule is None
    assert instance.weight_decay is None
    assert set(instance.defaulted) == {"epochs", "augment", "precise_bn"}


@pytest.mark.parametrize(("task", "batch_size"), [
    ("classification", 32), ("segmentation", 4), ("detection", 32)])
def test_embedded_shapes_batch_by_the_task_unless_told(task, batch_size):
    """Segmentation batches 4 images (eight times the steps of 32 in the same epochs);
    an explicit batch size wins."""
    assert vk.vocabulary.get_task(task).batch_size == batch_size
    data = vk.data.shapes(task, n=40, image_size=(32, 32), seed=0)
    assert data.batch_size == batch_size
    assert vk.data.shapes(task, n=40, image_size=(32, 32), batch_size=5).batch_size == 5


def test_warmup_is_a_tenth_of_the_run_up_to_three_epochs():
    assert [warmup_epochs_for(e) for e in (1, 10, 12, 30, 300)] == [0.1, 1.0, 1.2, 3.0, 3.0]


@pytest.mark.parametrize("options, message", [
    ({"warmup_epochs": -1.0}, "warmup_epochs"),
    ({"epochs": 5, "warmup_epochs": 5.0}, "warmup_epochs < epochs"),
    ({"schedule": "plateau", "warmup_epochs": 1.0}, "schedule='cosine'"),
])
def test_bad_warmup_is_named(options, message):
    with pytest.raises(ValueError, match=message):
        choose_defaults("classification", **options)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="'captioning'"):
        choose_defaults("captioning")


def test_warmup_then_cosine_matches_the_formula():
    peak, total, warmup = 0.01, 100, 10
    optimizer = vk.train.make_optimizer("adam", peak, schedule="cosine", total_steps=total,
                                        warmup_steps=warmup)
    schedule = optimizer._learning_rate
    for step in range(total + 1):
        if step < warmup:  # linear from 0 (Goyal et al. 2017)
            expected = peak * step / warmup
        else:  # cosine from the peak to 0 over the remaining steps
            expected = 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-7), step
    with pytest.raises(ValueError, match="warmup_steps"):
        vk.train.make_optimizer("adam", peak, schedule="cosine", total_steps=10,
                                warmup_steps=10)
    with pytest.raises(ValueError, match="needs schedule='cosine'"):
        vk.train.make_optimizer("adam", peak, warmup_steps=3)


def test_fit_trains_with_the_defaults_and_says_so_once(tiny_digits, capsys):
    run = vk.train.fit("simple_cnn", tiny_digits, epochs=2, verbose=2, evaluate=False,
                       model_kwargs=TINY)
    printed = capsys.readouterr().out
    assert printed.count("fit: classification defaults") == 1
    for text in ("learning_rate=0.003", "schedule='cosine'", "warmup_epochs=0.2",
                 "augment='light'"):
        assert text in printed
    schedule = run.model.optimizer._learning_rate
    steps = tiny_digits.steps_per_epoch
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert schedule.warmup_steps == round(0.2 * steps)
    assert schedule.warmup_target == pytest.approx(0.003)
    assert schedule.decay_steps == 2 * steps - round(0.2 * steps)
    assert int(run.model.optimizer.iterations) == 2 * steps


def test_fit_with_everything_given_prints_nothing_and_trains_at_a_constant_rate(
        tiny_digits, capsys):
    run = vk.train.fit("simple_cnn", tiny_digits, epochs=1, verbose=2, evaluate=False,
                       learning_rate=0.01, schedule="constant", weight_decay=0.0,
                       augment="none", precise_bn=True, model_kwargs=TINY)
    assert "defaults" not in capsys.readouterr().out
    assert float(run.model.optimizer.learning_rate) == pytest.approx(0.01)


def test_receptive_field_matches_the_pixels_one_output_unit_sees():
    """The field `receptive_field` computes is where a bright pixel changes the built
    network's centre unit (all-positive weights, so a bright pixel in the field always
    raises some maximum; max pooling passes no gradient to non-maximal pixels, hence a
    perturbation rather than a gradient)."""
    size = 64
    for blocks in (1, 2, 3, 4):
        model = vk.models.build("simple_cnn", (size, size, 1), 2, filters=(2,) * blocks)
        features = keras.Model(model.inputs, model.get_layer(f"pool{blocks}").output)
        for layer in features.layers:
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(tf.ones_like(layer.kernel))
        centre = features.output.shape[1] // 2
        images = np.full((size + 1, size, size, 1), 100.0, np.float32)
        for row in range(size):  # image `row` has a bright pixel in that row's centre
            images[row, row, centre * 2 ** blocks] = 255.0
        units = features.predict(images, verbose=0)[:, centre, centre, 0]
        seen = np.flatnonzero(np.abs(units[:size] - units[size]) > 1e-3)
        assert seen.max() - seen.min() + 1 == receptive_field(blocks), blocks


def test_simple_cnn_depth_follows_the_input_size():
    for side, blocks in ((16, 3), (28, 3), (32, 4), (64, 5), (128, 6)):
        filters = default_filters((side, side, 3))
        assert len(filters) == blocks, side
        assert side // 2 ** blocks >= 2  # the last map stays at least 2x2
        model = vk.models.build("simple_cnn", (side, side, 3), 5)
        assert model.get_layer(f"pool{blocks}").output.shape[1] >= 2
    # a field that covers the image at 64x64, where three blocks (22 px) did not
    assert receptive_field(len(default_filters((64, 64, 3)))) >= 64


def test_unet_has_batch_norm_unless_the_paper_network_is_asked_for():
    def norms(model):
        return sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)

    assert norms(vk.models.build("unet", (32, 32, 3), 3, depth=2, filters=4)) == 10
    assert norms(vk.models.build("unet", (32, 32, 3), 3, depth=2, filters=4,
                                 batch_norm=False)) == 0


def test_range_test_restores_the_weights_and_sweeps_exponentially(tiny_digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = vk.models.build("simple_cnn", tiny_digits.input_shape, tiny_digits.num_classes,
                            **TINY)
    before = [w.copy() for w in model.get_weights()]
    found = vk.train.find_learning_rate(model, tiny_digits, min_lr=1e-5, max_lr=1e-1,
                                        num_steps=9, plot=tmp_path / "range.png")
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # batch-norm statistics included
    np.testing.assert_allclose(found.rates, np.logspace(-5, -1, 9)[:len(found.rates)])
    assert len(found.losses) == len(found.rates) and np.all(np.isfinite(found.losses))
    assert found.method == "minimum" and found.suggestion == pytest.approx(found.minimum / 10)
    with open(tmp_path / "range.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_range_test_reads_a_known_curve():
    """A loss falling fastest at 1e-3, lowest at 1e-2 and diverging after."""
    rates = np.logspace(-6, 0, 121)
    x = np.log10(rates)
    losses = 2.0 - np.tanh((x + 3) * 1.5) + np.where(x > -2, 4 * (x + 2) ** 2, 0.0)
    minimum = _read_off(rates, losses, "minimum")
    assert minimum.minimum == pytest.approx(rates[np.argmin(losses)], rel=0.25)
    assert minimum.suggestion == pytest.approx(minimum.minimum / 10)
    steepest = _read_off(rates, losses, "steepest")
    assert steepest.suggestion == pytest.approx(1e-3, rel=0.13)


def test_range_test_stops_at_divergence_and_names_bad_input(tiny_digits):
    model = vk.models.build("simple_cnn", tiny_digits.input_shape, tiny_digits.num_classes,
                            **TINY)
    found = vk.train.find_learning_rate(model, tiny_digits, optimizer="sgd", min_lr=1e-3,
                                        max_lr=1e6, num_steps=40)
    assert len(found.rates) < 40  # SGD at 1e6 blows up well before the end
    with pytest.raises(ValueError, match="min_lr"):
        vk.train.find_learning_rate(model, tiny_digits, min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="method"):
        vk.train.find_learning_rate(model, tiny_digits, method="lowest")
    with pytest.raises(ValueError, match="NaN or infinite"):
        _read_off(np.array([1e-3, 1e-2]), np.array([np.nan, np.nan]), "minimum")


def test_range_test_leaves_the_lucky_last_steps_aside():
    """A noisy sweep that never diverges, whose last batches happen to score lowest
    (seen on shapes with simple_cnn): `skip_end` keeps the read-off on the valley."""
    rates = np.logspace(-6, 0, 100)
    x = np.log10(rates)
    losses = 2.0 - 0.2 * np.exp(-((x + 2) ** 2))  # a valley at 1e-2
    losses[-3:] = 1.5  # three lucky batches at the end
    assert _read_off(rates, losses, "minimum", sigma=1.0).minimum > 0.5
    kept = _read_off(rates, losses, "minimum", sigma=1.0, skip_end=5)
    assert kept.minimum == pytest.approx(1e-2, rel=0.2)


def test_valley_is_the_longest_falling_stretch_of_steps():
    """Hand-worked: the longest strictly decreasing run (gaps allowed) of the curve below
    is steps 0, 2, 4, 5, 6, 7 (3.0 > 2.9 > 2.5 > 2.0 > 1.5 > 1.2); the noisy 3.1 and 2.95
    are skipped, the rise after the minimum ends it."""
    losses = np.array([3.0, 3.1, 2.9, 2.95, 2.5, 2.0, 1.5, 1.2, 2.2, 4.0])
    assert longest_valley(losses) == (0, 7)
    assert longest_valley(np.array([1.0, 2.0, 3.0])) == (0, 0)  # no fall at all
    rates = np.logspace(-4, 0, 10)
    read = _read_off(rates, losses, "valley", sigma=1e-3)  # next to no smoothing
    assert read.valley == pytest.approx(rates[3]) and read.suggestion == read.valley


def test_segnet_encoder_field_matches_the_pixels_one_unit_sees():
    """`encoder_receptive_field` against the built encoder (perturbation, as for
    simple_cnn: all-ones kernels, batch norm at its initial identity), after each of
    three stages of one network."""
    size = 64
    model = vk.models.build("segnet", (size, size, 1), 2, width_multiplier=1 / 64, stages=3)
    features = keras.Model(model.inputs, [model.get_layer(f"block{stage}_pool").output
                                          for stage in (1, 2, 3)])
    for layer in features.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(tf.ones_like(layer.kernel))
    column = size // 2  # the centre unit of every stage's map covers this column
    images = np.full((size + 1, size, size, 1), 100.0, np.float32)
    for row in range(size):
        images[row, row, column] = 255.0
    outputs = features.predict(images, verbose=0, batch_size=size + 1)
    for stage, maps in enumerate(outputs, start=1):
        centre = maps.shape[1] // 2
        units = maps[:, centre, centre, 0]
        seen = np.flatnonzero(np.abs(units[:size] - units[size]) > 1e-3)
        assert seen.max() - seen.min() + 1 == encoder_receptive_field(stage), stage


def test_segnet_depth_follows_the_input_size():
    """The fewest VGG16 stages whose field covers the shorter side, no more than keep
    the bottleneck at least 4x4: the paper's five on CamVid's 360x480 and from 128 pixels
    up, four at 64x64 (a 4x4 bottleneck, not 2x2), three at 48x48 (6x6; four would leave
    3x3) and at 32x32."""
    assert [default_stages((side, side, 3)) for side in (8, 16, 31, 32, 48, 64, 100, 127,
                                                         128, 224)] == [
        1, 2, 2, 3, 3, 4, 4, 4, 5, 5]
    assert default_stages((360, 480, 3)) == default_stages((480, 360, 3)) == 5
    assert default_stages((64, 640, 3)) == 4  # the shorter side decides
    for side in range(8, 400):
        stages = default_stages((side, side, 3))
        assert side / 2 ** stages >= 4, side  # the bottleneck stays at least 4x4
        # one stage fewer would leave the image wider than the field, one more would
        # shrink the bottleneck below 4x4 (or exceed VGG16's five)
        assert stages == 1 or encoder_receptive_field(stages - 1) < side, side
        assert (stages == 5 or encoder_receptive_field(stages) >= side
                or side / 2 ** (stages + 1) < 4), side
    model = vk.models.build("segnet", (64, 64, 3), 6, width_multiplier=1 / 64)
    unpooling = [layer for layer in model.layers
                 if isinstance(layer, vk.models.layers.MaxUnpooling2D)]
    assert len(unpooling) == 4
    assert tuple(model.get_layer("block4_pool").output.shape[1:3]) == (4, 4)
    assert model.output_shape == (None, 64, 64, 6)
    with pytest.raises(ValueError, match="stages"):
        vk.models.build("segnet", (64, 64, 3), 6, stages=6)


def test_segnet_bottleneck_at_64_and_224_and_the_papers_depth_when_asked():
    """224x224 keeps the paper's five stages (a 7x7 bottleneck, as VGG16's; 64x64 stops
    at four, 4x4, above); stages=5 builds the paper's network at 64x64 all the same
    (2x2)."""
    def bottleneck(model):
        pools = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.MaxPooling2D)]
        return len(pools), tuple(pools[-1].output.shape[1:3])

    assert bottleneck(vk.models.build("segnet", (224, 224, 3), 2, width_multiplier=1 / 64)
                      ) == (5, (7, 7))
    assert bottleneck(vk.models.build("segnet", (64, 64, 3), 2, width_multiplier=1 / 64,
                                      stages=5)) == (5, (2, 2))


def test_segmentation_trains_on_cross_entropy_plus_dice_by_default():
    """The task's loss against a hand-computed reference: mean cross-entropy over the
    pixels that are not ignored plus 1 - the mean over classes of the soft Dice
    (2 sum(p t) + 1) / (sum p + sum t + 1), on probabilities and on logits."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    masks = rng.integers(0, 3, (2, 4, 4))
    masks[0, 0, :2] = 255  # ignored
    valid = masks != 255
    safe = np.where(valid, masks, 0)
    picked = np.take_along_axis(probabilities, safe[..., None], -1)[..., 0]
    cross_entropy = -np.log(picked)[valid].mean()
    dice = []
    for k in range(3):
        truth = (safe == k) & valid
        p = probabilities[..., k] * valid
        dice.append((2 * (p * truth).sum() + 1) / (p.sum() + truth.sum() + 1))
    expected = cross_entropy + 1 - np.mean(dice)
    task = vk.tasks.get_task("segmentation")
    inputs = keras.Input((4, 4, 3))
    softmax = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(inputs))
    linear = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    assert float(task.loss(softmax)(masks, probabilities)) == pytest.approx(expected, rel=1e-5)
    assert float(task.loss(linear)(masks, logits)) == pytest.approx(expected, rel=1e-5)


def test_range_test_warns_when_the_loss_never_falls():
    # A loss rising from the first rate: every rule would suggest the bottom of the
    # range (the "minimum" rule 1e-7, below min_lr) without a falling loss to read.
    rates = np.logspace(-6, 0, 40)
    losses = 2.3 + np.linspace(0.0, 3.0, 40)
    for method in ("minimum", "steepest", "valley"):
        with pytest.warns(UserWarning, match=r"never fell below its value at the first "
                                             r"rate, 1e-06 .*Lower min_lr"):
            found = _read_off(rates, losses, method, sigma=1.6, skip_end=5)
        assert found.minimum == pytest.approx(1e-6)
    x = np.log10(rates)
    falling = 2.0 - np.tanh((x + 3) * 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _read_off(rates, falling, "minimum")


@pytest.mark.parametrize("kernel_size", [5, 7])
def test_segnet_basic_field_matches_the_pixels_one_unit_sees(kernel_size):
    """`basic_receptive_field` against SegNet-Basic's built encoder (all-ones kernels,
    batch norm at its initial identity, one bright row per image on black): the paper's
    7x7 kernels see 106 pixels, as it states; 5x5, 76."""
    size = 128
    model = vk.models.build("segnet", (size, size, 1), 2, width_multiplier=1 / 64,
                            variant="basic", kernel_size=kernel_size)
    features = keras.Model(model.inputs, model.get_layer("block4_pool").output)
    for layer in features.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(tf.ones_like(layer.kernel))
    images = np.zeros((size, size, size, 1), np.float32)
    for row in range(size):
        images[row, row, size // 2] = 255.0
    maps = features.predict(images, verbose=0, batch_size=size)
    centre = maps.shape[1] // 2
    seen = np.flatnonzero(maps[:, centre, centre, 0] > 0)
    assert seen.max() - seen.min() + 1 == basic_receptive_field(kernel_size)
    assert basic_receptive_field(BASIC_KERNEL_SIZE) == 106  # the paper's window


def test_segnet_basic_kernel_follows_the_input_size():
    """The smallest odd kernel whose field covers the shorter side, at most the paper's
    7: 3 up to 46 pixels, 5 up to 76 (64x64), 7 above; three stages below 64 pixels."""
    assert [basic_kernel_size((side, side, 3)) for side in (32, 46, 47, 64, 76, 77, 360)] == [
        3, 3, 5, 5, 5, 7, 7]
    for side in range(16, 300):
        kernel = basic_kernel_size((side, side, 3))
        assert kernel == 7 or basic_receptive_field(kernel) >= side
        assert kernel == 3 or basic_receptive_field(kernel - 2) < side
    model = vk.models.build("segnet", (64, 64, 3), 6, width_multiplier=1 / 64, variant="basic")
    assert model.get_layer("block1_1_conv").kernel_size == (5, 5)
    assert tuple(model.get_layer("block4_pool").output.shape[1:3]) == (4, 4)
    small = vk.models.build("segnet", (32, 32, 3), 6, width_multiplier=1 / 64, variant="basic")
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in small.layers) == 3
    assert small.get_layer("block1_1_conv").kernel_size == (
        basic_kernel_size((32, 32, 3), stages=3), ) * 2
