"""Two-phase fine-tuning on the embedded digits: frozen backbone first, then unfrozen."""

from __future__ import annotations

import csv
import os

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.fine_tune import parse_fine_tune, set_backbone_trainable

LEARNING_RATE = 1e-3


class WeightSnapshots(keras.callbacks.Callback):
    """The backbone's weights (moving statistics included) at the start and each epoch end."""

    def __init__(self, layer_name: str) -> None:
        super().__init__()
        self.layer_name = layer_name
        self.snapshots: list[dict[str, np.ndarray]] = []

    def _take(self) -> None:
        backbone = self.model.get_layer(self.layer_name)
        self.snapshots.append({w.path: np.array(w.numpy()) for w in backbone.weights})

    def on_train_begin(self, logs=None) -> None:
        if not self.snapshots:
            self._take()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._take()


def changed(before: dict, after: dict, keys) -> list[str]:
    return [k for k in keys if not np.array_equal(before[k], after[k])]


@pytest.fixture(scope="module")
def digits32():
    return vk.data.digits(image_size=(32, 32), batch_size=16, seed=0).take(64, 32)


def tiny_transfer_model() -> keras.Model:
    """A user's usual model: a nested backbone (with BatchNorm), pooling, a dense head."""
    backbone = vk.models.build_backbone("resnet18", (32, 32, 3), width_multiplier=0.125)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs)["P5"])
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(pooled)
    return keras.Model(inputs, outputs, name="tiny_transfer")


@pytest.mark.parametrize("builder", [
    pytest.param(tiny_transfer_model, id="resnet18_backbone"),
    # The keras.applications classifier itself: 217 s here (two MobileNetV2 traces).
    pytest.param(lambda: vk.models.build("mobilenet_v2", (32, 32, 3), 10,
                                         width_multiplier=0.35),
                 id="mobilenet_v2", marks=pytest.mark.slow),
])
def test_frozen_phase_keeps_the_backbone_then_fine_tuning_changes_it(builder, digits32,
                                                                     tmp_path):
    keras.utils.set_random_seed(0)
    model = builder()
    name = next(layer.name for layer in model.layers if layer.name.endswith("_backbone"))
    snapshots = WeightSnapshots(name)
    head_before = [np.array(w) for w in model.get_layer("predictions").get_weights()]
    run = vk.train.fit(model, digits32, epochs=2, run_dir=tmp_path / "run",
                       learning_rate=LEARNING_RATE, schedule="constant",  # (default: cosine)
                       callbacks=[snapshots], verbose=0,
                       evaluate=False, plots=False, tensorboard=False, checkpoint=False,
                       fine_tune={"freeze_epochs": 1, "unfreeze": "all",
                                  "learning_rate_factor": 0.1})
    start, after_frozen, after_tuned = snapshots.snapshots
    keys = sorted(start)
    moving = [k for k in keys if "moving_" in k]
    assert len(moving) > 10
    assert changed(start, after_frozen, keys) == []  # moving statistics included
    assert len(changed(after_frozen, after_tuned, moving)) == len(moving)
    trainable = [k for k in keys if "moving_" not in k]
    assert len(changed(after_frozen, after_tuned, trainable)) > 0.9 * len(trainable)
    assert not np.array_equal(model.get_layer("predictions").get_weights()[0], head_before[0])

    with open(os.path.join(run.run_dir, "history.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert [float(row["fine_tune_phase"]) for row in rows] == [1.0, 2.0]
    np.testing.assert_allclose([float(row["learning_rate"]) for row in rows],
                               [LEARNING_RATE, LEARNING_RATE * 0.1], rtol=1e-6)
    assert run.history["fine_tune_phase"] == [1.0, 2.0]


def test_last_k_blocks_unfreezes_only_the_last_stages():
    keras.utils.set_random_seed(0)
    model = vk.models.build("mobilenet_v2", (32, 32, 3), 10, width_multiplier=0.35)
    backbone = model.get_layer("mobilenet_v2_backbone")
    backbone.trainable = False
    set_backbone_trainable(backbone, "last_k_blocks", k=1)
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    frozen = {layer.name for layer in backbone.layers if not layer.trainable and layer.weights}
    # MobileNetV2's P4 tap is block_13_expand_relu: block 13's expansion stays frozen,
    # its depthwise convolution (stride 2, towards P5) and everything after it train.
    assert "block_13_expand" in frozen and "block_12_project" in frozen
    assert {"block_13_depthwise", "block_16_project", "Conv_1", "Conv_1_bn"} <= trainable
    assert not any(name.startswith(("block_1_", "Conv1", "bn_Conv1")) for name in trainable)
    set_backbone_trainable(backbone, "all")
    assert all(layer.trainable for layer in backbone.layers)


@pytest.mark.parametrize(("spec", "message"), [
    ({"freeze_epochs": 0}, r"freeze_epochs.*1 to epochs=3"),
    ({"freeze_epochs": 4}, r"freeze_epochs.*1 to epochs=3"),
    ({"freeze_epochs": 1, "unfreeze": "some"}, r"unfreeze.*'all', 'last_k_blocks'"),
    ({"freeze_epochs": 1, "unfreeze": "last_k_blocks"}, r"needs fine_tune\['k'\]"),
    ({"freeze_epochs": 1, "k": 2}, r"'k'\] applies to unfreeze='last_k_blocks'"),
    ({"freeze_epochs": 1, "learning_rate_factor": 0}, r"learning_rate_factor.*\(0, 1\]"),
    ({"freeze_epoch": 1}, r"Unknown fine_tune key\(s\) 'freeze_epoch'"),
])
def test_bad_fine_tune_plans_name_the_key(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_fine_tune(spec, 3)


def test_fine_tune_needs_a_model_with_a_backbone(tiny_digits):
    with pytest.raises(ValueError, match=r"nested model named '\*_backbone'.*'simple_cnn'"):
        vk.train.fit("simple_cnn", tiny_digits, epochs=2, verbose=0, evaluate=False,
                     model_kwargs={"filters": (4,)}, fine_tune={"freeze_epochs": 1})


def test_freeze_epochs_equal_to_epochs_warns_that_the_backbone_is_never_unfrozen():
    with pytest.warns(UserWarning, match=r"freeze_epochs'\]=3 equals epochs=3.*never "
                      r"fine-tuned"):
        plan = parse_fine_tune({"freeze_epochs": 3}, 3)
    assert plan.freeze_epochs == 3


class CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None) -> None:
        if epoch == self.epoch:
            raise RuntimeError(f"simulated crash after epoch {epoch}")


@pytest.mark.slow  # two interrupted-then-resumed fits: ~60 s on 2 busy cores
def test_a_run_resumed_in_the_fine_tuning_phase_keeps_its_step_and_schedule(digits32,
                                                                           tmp_path):
    """Resuming used to restore the phase-2 backup into the phase-1 optimizer (skipped by
    Keras): the step went back to 0, the cosine rate rose again and Adam's moments reset."""
    options = dict(epochs=4, run_dir=tmp_path / "run", learning_rate=LEARNING_RATE,
                   schedule="cosine", verbose=0, evaluate=False, plots=False,
                   tensorboard=False, checkpoint=False,
                   fine_tune={"freeze_epochs": 2, "unfreeze": "all"})
    keras.utils.set_random_seed(0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        vk.train.fit(tiny_transfer_model(), digits32, callbacks=[CrashAt(2)], **options)
    keras.utils.set_random_seed(0)
    model = tiny_transfer_model()
    run = vk.train.fit(model, digits32, **options)
    steps = 64 // 16
    assert int(model.optimizer.iterations.numpy()) == 4 * steps
    with open(os.path.join(run.run_dir, "history.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["fine_tune_phase"]) for row in rows] == [1.0, 1.0, 2.0, 2.0]
    rates = [float(row["learning_rate"]) for row in rows]
    # Cosine decay (no warmup) from 1e-3 over 16 steps, a tenth of it in phase 2: at the
    # end of epoch 3 (step 16) the rate is 0; a restarted step would give 0.1 * 9.5e-4.
    assert rates[3] < rates[2] and rates[3] == pytest.approx(0.0, abs=1e-9)
