"""Training defaults per task and optimizer: the one table `vk.train.fit` reads.

`fit` fills every option the user leaves unset (None, or "auto" for `augment`) from
the task's `training_defaults` (a `TaskDefaults` row on each task object, listed by name
in `TASK_DEFAULTS`); an explicit argument always wins. It prints once which values it
chose and where each one came from (`ChosenDefaults.describe`).

Where the values come from:

- Learning rates: the adaptive methods start from Kingma & Ba (2015)'s 1e-3, raised to
  3e-3 with warmup and cosine decay for short runs on small data sets; this is the rate
  visionkit's U-Net recipe was tuned to (mean IoU 0.855 on shapes) and it sits within 3x
  of the best fixed rate of a grid on every embedded task (`benchmarks/defaults.py`; the
  range test `vk.train.find_learning_rate` agrees). Ultralytics's "optimizer=auto"
  chooses AdamW with `0.002 * 5 / (4 + num_classes)` for short runs (about 1e-3 for five
  classes) and SGD at 0.01 for long ones. SGD with momentum uses 0.05 for a batch of 32
  (Goyal et al. 2017's linear scaling of He et al.'s 0.1 for 256 would give 0.0125, which
  is too slow for ten epochs from scratch; visionkit's ResNet recipe measured 0.05). Not
  yet sound for every model: ResNet-18 with Nesterov momentum at 0.05 stayed at chance on
  64x64 shapes (0.234 after 10 epochs, first validation loss 335), where Adam's default
  reached 0.744; the ResNet recipe now trains with Adam.
- Warmup: a linear ramp from 0 over the first epochs (Goyal et al. 2017, "Accurate,
  Large Minibatch SGD", section 2.2): `min(3, epochs / 10)` epochs, Ultralytics's
  `warmup_epochs=3.0` capped at a tenth of the run, so a 10-epoch run warms up for one.
- Schedule: cosine decay to 0 after the warmup (Loshchilov & Hutter 2017, "SGDR";
  Ultralytics's `cos_lr`).
- Weight decay: decoupled (Loshchilov & Hutter 2019, "Decoupled Weight Decay
  Regularization"; Keras applies `weight_decay` this way for every optimizer): 5e-4 for
  SGD (Ultralytics's `weight_decay=0.0005`), 1e-4 for AdamW, none for plain Adam except
  in segmentation, where Adam decays by 1e-4 as AdamW does (Keras's `Adam(weight_decay=)`
  and `AdamW` are the same update): SegNet-Basic overfits the shapes (training mean IoU
  0.791 against validation 0.749 after 12 epochs at two threads), and with the decay it
  reached 0.754 (training 0.787), U-Net (16 filters) 0.810 against 0.792, seed 0.
  Ultralytics's "optimizer=auto" likewise trains short runs with AdamW.
- Augmentation: the "light" preset (flip and +-10% translation) for classification and
  segmentation; none for detection, whose recipe measured mAP@.5 0.74 without it in 20
  epochs (boxes that leave the image are dropped by translation). The preset shifts by
  whole pixels and mirrors the border (`visionkit.data.augment.Geometric`): with
  sub-pixel shifts and black borders, which blur training images and frame them in a way
  validation never shows, `simple_cnn` on 64x64 shapes reached 0.883 in 10 epochs,
  ResNet-18 0.905 and U-Net 0.753 (one thread, seed 0); with the preset as it is, 0.993,
  0.946 and 0.805.
- Loss: the task's (`Task.loss`); segmentation's is cross-entropy plus Dice
  (`visionkit.train.losses.CrossEntropyDice`), as segmentation_models documents
  (`DiceLoss() + CategoricalFocalLoss()`) and nnU-Net trains: with the background on 77%
  of the shapes' pixels, cross-entropy alone reached mean IoU 0.576 with U-Net (16
  filters, 12 epochs) and SegNet predicted background on 95% of pixels; with Dice U-Net
  reached 0.738 in batches of 8 and 0.761 in batches of 4. SegNet's own recipe, median
  frequency balancing (Badrinarayanan et al. 2017, section 4, after Eigen & Fergus 2015:
  cross-entropy weighted by `median(freq) / freq_c`), plus Dice, trailed cross-entropy +
  Dice on SegNet-Basic: validation mean IoU 0.540 against 0.619 after 6 epochs (stopped).
- Batch-norm statistics: recomputed before each validation from 512 training images
  with the current weights (Wu & Johnson 2021's PreciseBN; `visionkit.train.precise_bn`)
  rather than Keras's moving averages, which trail the weights of a short run at these
  rates: ResNet-18 (deep stem) on 64x64 shapes validated at 0.888 with the moving
  averages (validation loss up to 25 in its first epochs while training improved) and
  0.905 with recomputed statistics (one thread, seed 0). Not for detection yet, whose 20-epoch default run
  (81 minutes here) was measured with the moving averages.
- Epochs: 10 for classification, 12 for segmentation, 20 for detection (what the
  embedded data sets need at these rates; see the README's table).
- Batch size (the task's `batch_size`, read by `vk.data.shapes` and recipes when given
  none): 32, and 4 for segmentation, where every image carries thousands of labelled
  pixels, so a batch of 4 still averages the loss over 16,384 of them at 64x64, and eight times as many
  steps fit in the same epochs. A short run of a segmentation network from scratch is
  limited by its number of steps: U-Net with 16 filters on 1,024 shapes images, 12
  epochs, cross-entropy + Dice, reached mean IoU 0.461 at 32 (26 steps an epoch),
  0.738 at 8 and 0.761 at 4 (205 steps an epoch, still rising; validation followed
  training throughout, so neither batch norm's statistics nor overfitting limit it).
  Keras's DeepLabV3+ example trains at 4, the U-Net paper at 1 tile, Ultralytics at 16.
  SegNet (a quarter width) did not gain: 0.649 at 8, 0.597 at 4; at half width 0.646
  at 4 (training 0.670, still rising); the paper's SegNet-Basic (`segnet(variant="basic")`,
  5x5 kernels at 64x64) 0.721 at 4 (training 0.765).
  Classification keeps 32: ResNet-18 on 2,048 shapes images in batches of 8 (205 steps
  an epoch) was at chance as long as in batches of 32 (training accuracy 0.194, 0.235,
  0.277 over its first 3 epochs; see tests/train/test_defaults_slow.py).

Example:

>>> from visionkit.train.defaults import choose_defaults
>>> chosen = choose_defaults("classification", epochs=None, optimizer="adam")
>>> chosen.learning_rate, chosen.schedule, chosen.epochs
(0.003, 'cosine', 10)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from visionkit.vocabulary import TASKS, Task, get_task

__all__ = ["ADAPTIVE_LEARNING_RATES", "DECOUPLED_WEIGHT_DECAY", "TASK_DEFAULTS", "TaskDefaults",
           "ChosenDefaults", "apply_defaults",
           "choose_defaults", "suggested_learning_rate", "warmup_epochs_for"]


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """The training defaults of one task.

    Attributes:
        epochs: epochs of a run.
        learning_rates: initial (peak) learning rate per optimizer name.
        weight_decay: decoupled weight decay per optimizer name (missing: none).
        augment: the augmentation preset of the train split.
        schedule: the learning-rate schedule ("cosine": warmup, then cosine decay).
        max_warmup_epochs: the warmup is `min(max_warmup_epochs, epochs / 10)` epochs.
        precise_bn: recompute batch-norm statistics before each validation
            (`visionkit.train.precise_bn`).
    """

    epochs: int
    learning_rates: dict[str, float]
    weight_decay: dict[str, float]
    augment: str = "light"
    schedule: str = "cosine"
    max_warmup_epochs: float = 3.0
    precise_bn: bool = True


# The adaptive optimizers' initial rates and the decoupled weight decays most tasks share
# (see the module's docstring for their sources); each task's row starts from these.
ADAPTIVE_LEARNING_RATES = {"adam": 3e-3, "adamw": 3e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
DECOUPLED_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 1e-4}


def adaptive_defaults(epochs: int, augment: str, precise_bn: bool = True,
                      weight_decay: dict[str, float] | None = None,
                      **learning_rates: float) -> TaskDefaults:
    """A task's row at the shared adaptive rates and decoupled weight decays.

    Args:
        epochs: epochs of a run.
        augment: the augmentation preset of the train split.
        precise_bn: recompute batch-norm statistics before each validation. Defaults to
            True.
        weight_decay: the task's own decoupled weight decays per optimizer name, over
            `DECOUPLED_WEIGHT_DECAY`. Defaults to None (the shared ones).
        **learning_rates: the task's own rates per optimizer name (SGD's always), over
            `ADAPTIVE_LEARNING_RATES`.
    """
    return TaskDefaults(epochs=epochs, learning_rates={**ADAPTIVE_LEARNING_RATES, **learning_rates},
                        weight_decay={**DECOUPLED_WEIGHT_DECAY, **(weight_decay or {})},
                        augment=augment, precise_bn=precise_bn)


class _TaskDefaultsTable(Mapping):
    """Task name -> `TaskDefaults`, read from each registered task's `training_defaults`.

    The rows live on the task objects (`visionkit.tasks`); this read-only view lists them
    by name for users and tests.
    """

    def __getitem__(self, name: str) -> TaskDefaults:
        row = getattr(TASKS.get(name), "training_defaults", None)
        if row is None:
            raise KeyError(name)
        return row

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(name for name, cls in TASKS.items()
                           if cls.training_defaults is not None))

    def __len__(self) -> int:
        return sum(1 for _ in self)


TASK_DEFAULTS: Mapping[str, TaskDefaults] = _TaskDefaultsTable()


def warmup_epochs_for(epochs: int, max_warmup_epochs: float = 3.0) -> float:
    """Warmup epochs of a run: `min(max_warmup_epochs, epochs / 10)`."""
    return min(float(max_warmup_epochs), int(epochs) / 10.0)


@dataclasses.dataclass(frozen=True)
class ChosenDefaults:
    """The options `fit` trains with, and which of them were defaults.

    Attributes:
        epochs, optimizer, learning_rate, schedule, warmup_epochs, weight_decay,
        augment, precise_bn: the values used (`learning_rate` may be "find": the range test runs
            once the model is built).
        defaulted: names of the options that came from `TASK_DEFAULTS`.
        task: the task's name.
    """

    epochs: int
    optimizer: Any
    learning_rate: float | str | None
    schedule: str | None
    warmup_epochs: float
    weight_decay: float | None
    augment: Any
    defaulted: tuple[str, ...]
    task: str
    precise_bn: bool | int = True

    def describe(self) -> str:
        """One line naming each defaulted option and its value."""
        if not self.defaulted:
            return f"fit: no defaults used for {self.task}."
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.defaulted)
        return (f"fit: {self.task} defaults (visionkit.train.defaults): {shown}; "
                "pass any of them to fit to override.")


def choose_defaults(task: Any, *, epochs: int | None = None, optimizer: Any = "adam",
                    learning_rate: float | str | None = None, schedule: str | None = None,
                    warmup_epochs: float | None = None, weight_decay: float | None = None,
                    augment: Any = "auto", data_augment: Any = "none",
                    precise_bn: bool | int | None = None) -> ChosenDefaults:
    """Fills the options left unset from the task's row of `TASK_DEFAULTS`.

    Args:
        task: a task object or name ("classification", "segmentation", "detection").
        epochs: epochs, or None for the task's.
        optimizer: an optimizer name or instance. An instance keeps its own learning
            rate, schedule and weight decay (none of them is defaulted).
        learning_rate: a rate, "find" (the range test), or None for the task's rate of
            `optimizer`.
        schedule: "cosine", "constant", "plateau", or None for the task's ("cosine").
        warmup_epochs: linear warmup in epochs, or None for `min(3, epochs / 10)` (0
            unless the schedule is "cosine").
        weight_decay: decoupled weight decay, or None for the task's for `optimizer`.
        augment: "auto" (the task's preset when the data has no augmentation), or a
            preset name / layers to use instead of the data's.
        data_augment: the data's own augmentation (`Data.augment`).
        precise_bn: True, False or a number of images (see `vk.train.fit`), or None for
            the task's (on, except for detection).

    Returns:
        A `ChosenDefaults`.

    Raises:
        ValueError: for an unknown task, negative warmup or warmup longer than the run.
    """
    resolved = task if isinstance(task, Task) else None
    if resolved is None and isinstance(task, str) and task in TASKS:
        resolved = get_task(task)
    name = task if isinstance(task, str) else getattr(task, "name", str(task))
    row = getattr(resolved, "training_defaults", None)
    if row is None:
        raise ValueError(f"No training defaults for task {name!r}; expected one of "
                         f"{sorted(TASK_DEFAULTS)}.")
    defaulted: list[str] = []
    if epochs is None:
        epochs = row.epochs
        defaulted.append("epochs")
    instance = not isinstance(optimizer, str)
    key = str(optimizer).lower()
    if learning_rate is None and not instance and key in row.learning_rates:
        learning_rate = row.learning_rates[key]
        defaulted.append("learning_rate")
    if schedule is None and not instance:
        schedule = row.schedule
        defaulted.append("schedule")
    if schedule == "constant":
        schedule = None
    if warmup_epochs is None:
        warmup_epochs = warmup_epochs_for(epochs, row.max_warmup_epochs) \
            if schedule == "cosine" else 0.0
        if warmup_epochs:
            defaulted.append("warmup_epochs")
    warmup_epochs = float(warmup_epochs)
    if warmup_epochs < 0 or warmup_epochs >= int(epochs):
        raise ValueError(f"Expected 0 <= warmup_epochs < epochs ({epochs}); received "
                         f"warmup_epochs={warmup_epochs!r}.")
    if warmup_epochs and schedule != "cosine":
        raise ValueError("warmup_epochs needs schedule='cosine' (warmup, then cosine decay); "
                         f"received schedule={schedule!r}.")
    if weight_decay is None and not instance and key in row.weight_decay:
        weight_decay = row.weight_decay[key]
        defaulted.append("weight_decay")
    if isinstance(augment, str) and augment == "auto":
        if isinstance(data_augment, str) and data_augment == "none" and row.augment != "none":
            augment = row.augment
            defaulted.append("augment")
        else:
            augment = data_augment
    if precise_bn is None:
        precise_bn = row.precise_bn
        defaulted.append("precise_bn")
    return ChosenDefaults(epochs=int(epochs), optimizer=optimizer, learning_rate=learning_rate,
                          schedule=schedule, warmup_epochs=warmup_epochs,
                          weight_decay=weight_decay, augment=augment,
                          defaulted=tuple(defaulted), task=name, precise_bn=precise_bn)


def apply_defaults(data: Any, *, verbose: Any = "auto", **options: Any) -> tuple[ChosenDefaults, Any]:
    """`choose_defaults` for `data`'s task; returns the choice and the data to train on.

    The data comes back with the chosen augmentation when it differs from its own. Unless
    `verbose` is 0, prints `ChosenDefaults.describe()` once.
    """
    chosen = choose_defaults(data.task, data_augment=data.augment, **options)
    if chosen.augment is not data.augment:
        data = data.with_augmentation(chosen.augment)
    if verbose != 0 and chosen.defaulted:
        print(chosen.describe(), flush=True)
    return chosen, data


def suggested_learning_rate(model: Any, data: Any, optimizer: Any, verbose: Any = "auto"
                            ) -> float:
    """Runs the range test (`find_learning_rate`) for `fit(learning_rate="find")`."""
    from visionkit.train.lr_finder import find_learning_rate

    result = find_learning_rate(model, data, optimizer=optimizer)
    if verbose != 0:
        print(f"fit: learning-rate range test suggests {result.suggestion:.3g} "
              f"({result.method}; swept {result.rates[0]:.1e}..{result.rates[-1]:.1e} "
              f"over {len(result.rates)} steps).", flush=True)
    return result.suggestion
