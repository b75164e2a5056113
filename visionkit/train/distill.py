"""Knowledge distillation: a student trained on a teacher's softened outputs.

`distill(teacher, student, data)` trains `student` with Keras 3's `keras.distillation`
API (`Distiller`, `LogitsDistillation`, `FeatureDistillation`) inside `vk.train.fit`, so
the run directory, callbacks, best checkpoint (the student's), evaluation and `Run` are
fit's. The loss of each step is

    alpha * hard_loss(labels, student) + (1 - alpha) * soft_loss

where `hard_loss` is the task's own (sparse cross-entropy; for segmentation over the
pixels not marked 255) and, for logits `z`, the soft loss of Hinton et al. (2015) is

    T^2 * KL(softmax(z_teacher / T) || softmax(z_student / T))

averaged over images (segmentation: over pixels), plus any feature-matching terms.
The T^2 factor keeps the soft gradients' size independent of the temperature. visionkit
models end in a softmax by default; their logits are recovered as log-probabilities
(`log softmax(z) = z - logsumexp(z)`, which gives the same softened distribution), so
teachers and students may end in a softmax or in logits, independently.

What Keras's API does not do and this module adds: Keras's `LogitsDistillation` with its
default `loss="kl_divergence"` applies the KL divergence to the scaled logits themselves,
without a softmax and without T^2 (PITFALLS.md); here it is always given a
`keras.losses.KLDivergence` instance, the path that applies both. Its feature
distillation compares layer outputs of equal shapes only (no learned adapter, as
FitNets has), reads top-level layers only, and runs the student a second time to read
them (twice the student's forward cost per step, and a second dropout mask).

References:
    - [Distilling the Knowledge in a Neural Network](https://arxiv.org/abs/1503.02531)
      (Hinton et al., 2015)
    - [Do Deep Nets Really Need to be Deep?](https://arxiv.org/abs/1312.6184)
      (Ba & Caruana, NeurIPS 2014)
    - [FitNets: Hints for Thin Deep Nets](https://arxiv.org/abs/1412.6550)
      (Romero et al., ICLR 2015)

Example (the soft loss; `distill(teacher, "simple_cnn", data, temperature=4.0,
alpha=0.1, epochs=10)` trains a student):

>>> import numpy as np
>>> teacher_logits = np.array([[2.0, 0.0]], "float32")
>>> loss = SoftTargetDistillation(temperature=2.0)
>>> p, q = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum(), np.array([0.5, 0.5])
>>> hand = 2.0 ** 2 * np.sum(p * np.log(p / q))
>>> bool(np.isclose(float(loss.compute_loss(teacher_logits, np.zeros((1, 2), "float32"))), hand))
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from visionkit.data.pipeline import Data
from visionkit.models import build as build_model
from visionkit.train.checks import check_model_against_data, final_activation
from visionkit.train.wrapper import TrainingWrapper
from visionkit.vocabulary import tasks_with

__all__ = ["Distiller", "SoftTargetDistillation", "distill"]

# Probabilities are floored here before the log: the smallest normal float32, so a
# probability that underflowed to 0 stays a finite (very negative) logit.
_SMALLEST_PROBABILITY = 1.1754944e-38


def _as_logits(outputs: Any, probabilities: bool) -> Any:
    if not probabilities:
        return outputs
    outputs = keras.ops.cast(outputs, "float32")
    return keras.ops.log(keras.ops.maximum(outputs, _SMALLEST_PROBABILITY))


@keras.saving.register_keras_serializable(package="visionkit")
class SoftTargetDistillation(keras.distillation.LogitsDistillation):
    """Hinton et al.'s soft-target loss on Keras's `LogitsDistillation`.

    `T^2 * mean(KL(softmax(z_t / T) || softmax(z_s / T)))` over the last axis, the mean
    over all other axes (images; pixels for segmentation).

    Args:
        temperature: the softmax temperature T (> 0). Defaults to 4.
        teacher_probabilities: whether the teacher's outputs are softmax probabilities
            (turned into logits with a log). Defaults to False (logits).
        student_probabilities: the same for the student. Defaults to False.

    Shapes: teacher and student outputs `[B, K]` or `[B, H, W, K]`, equal.

    Example:

    >>> import numpy as np
    >>> loss = SoftTargetDistillation(temperature=2.0)
    >>> z = np.array([[1.0, 2.0, 3.0]], "float32")
    >>> float(loss.compute_loss(z, z))
    0.0
    """

    def __init__(self, temperature: float = 4.0, teacher_probabilities: bool = False,
                 student_probabilities: bool = False, **kwargs: Any) -> None:
        kwargs.pop("loss", None)
        super().__init__(temperature=float(temperature), loss=keras.losses.KLDivergence())
        self.teacher_probabilities = bool(teacher_probabilities)
        self.student_probabilities = bool(student_probabilities)

    def compute_loss(self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any) -> Any:
        return super().compute_loss(
            keras.ops.cast(_as_logits(teacher_outputs, self.teacher_probabilities), "float32"),
            keras.ops.cast(_as_logits(student_outputs, self.student_probabilities), "float32"))

    def get_config(self) -> dict[str, Any]:
        return {"temperature": self.temperature,
                "teacher_probabilities": self.teacher_probabilities,
                "student_probabilities": self.student_probabilities}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SoftTargetDistillation:
        return cls(**config)


class Distiller(TrainingWrapper, keras.distillation.Distiller):
    """Keras's `Distiller` as a visionkit training wrapper (its `trained_model` is the
    student), ready for `vk.train.fit`. Arguments as `keras.distillation.Distiller`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.student.built:  # its variables exist: callbacks (backups) may read them now
            self.built = True

    @property
    def trained_model(self) -> keras.Model:
        return self.student


def _feature_losses(teacher: keras.Model, student: keras.Model,
                    features: Sequence[Any]) -> tuple[list[Any], list[float]]:
    """Keras `FeatureDistillation` terms and weights from `features` entries."""
    losses, weights = [], []
    for index, entry in enumerate(features):
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - {"teacher", "student", "loss", "weight"})
            if unknown or "teacher" not in entry or "student" not in entry:
                raise ValueError(f"Expected features[{index}] as {{'teacher': layer, "
                                 f"'student': layer, 'loss': 'mse', 'weight': 1.0}}; "
                                 f"received {dict(entry)!r}.")
            spec = dict(entry)
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            spec = {"teacher": entry[0], "student": entry[1]}
        else:
            raise ValueError(f"Expected features[{index}] as a (teacher_layer, "
                             f"student_layer) pair or a dict; received {entry!r}.")
        shapes = []
        for role, model in (("teacher", teacher), ("student", student)):
            try:
                shapes.append(tuple(model.get_layer(spec[role]).output.shape))
            except (ValueError, AttributeError):
                names = [layer.name for layer in model.layers]
                raise ValueError(f"features[{index}]: the {role} {model.name!r} has no "
                                 f"top-level layer {spec[role]!r}; its layers: {names}.") \
                    from None
        if shapes[0] != shapes[1]:
            raise ValueError(f"features[{index}]: teacher layer {spec['teacher']!r} outputs "
                             f"{shapes[0]} but student layer {spec['student']!r} outputs "
                             f"{shapes[1]}; feature matching compares equal shapes (Keras's "
                             "FeatureDistillation has no learned adapter).")
        losses.append(keras.distillation.FeatureDistillation(
            loss=spec.get("loss", "mse"), teacher_layer_name=spec["teacher"],
            student_layer_name=spec["student"]))
        weights.append(float(spec.get("weight", 1.0)))
    return losses, weights


def _probabilities(model: keras.Model, role: str) -> bool:
    activation = final_activation(model)
    if activation not in (None, "softmax", "linear"):
        raise ValueError(f"Distillation compares softmax distributions, but the {role} "
                         f"{model.name!r} ends in {activation!r}; build it with a softmax "
                         "or with logits (activation=None).")
    return activation == "softmax"


def distill(teacher: keras.Model, student: keras.Model | str | Callable[[], keras.Model],
            data: Data, temperature: float = 4.0, alpha: float = 0.1,
            features: Sequence[Any] = (), model_kwargs: dict[str, Any] | None = None,
            **fit_options: Any) -> Any:
    """Trains `student` to match a trained `teacher` (knowledge distillation).

    Built on `keras.distillation.Distiller`: each step's loss is
    `alpha * task_loss(labels, student) + (1 - alpha) * (soft + sum(weight * feature))`,
    with the soft loss `T^2 * KL(softmax(z_t / T) || softmax(z_s / T))` of Hinton et al.
    (2015) (see the module's docstring). Training goes through `vk.train.fit` (run
    directory, callbacks, best checkpoint of the student, evaluation of the student).

    Distillation pays where the student lacks labelled data (Hinton et al., section 3):
    on 16x16 digits a simple_cnn (16, 32, 64) trained on 10 images per class, 240
    steps, measured 0.859 alone and 0.884 distilled (T=4, alpha=0.1) from a 0.992
    teacher trained on all 1,437 images (means of 3 seeds, each seed better distilled).
    With all the images the same student gains nothing (0.956 alone, 0.949 distilled),
    and a student too small for the task does worse distilled (the capacity gap, Cho &
    Hariharan 2019): a two-block (16, 32), whose 10-pixel receptive field does not cover
    the digit, 0.765 alone and 0.607 distilled. Compare with the student trained alone
    before relying on it.

    Args:
        teacher: the trained teacher (a Keras model on the same images, with the same
            output shape; it is not trained, and its `trainable` flag is restored).
        student: a Keras model, a registry name (built for `data` with `model_kwargs`)
            or a function returning a model, as `fit`'s `model`.
        data: the `Data` set (classification or segmentation).
        temperature: the softmax temperature T (> 0). Defaults to 4.
        alpha: weight of the hard-label (task) loss, in [0, 1]; the distillation terms
            get `1 - alpha` (Keras's convention). Defaults to 0.1 (Hinton et al. found
            a low weight on the hard targets best).
        features: feature matching (FitNets-style hints): entries
            `(teacher_layer, student_layer)` or `{"teacher": ..., "student": ...,
            "loss": "mse", "weight": 1.0}`, top-level layers with equal output shapes.
            Defaults to none.
        model_kwargs: keyword arguments for a student given by name.
        **fit_options: passed to `vk.train.fit` (epochs, run_dir, learning_rate, ...).

    Returns:
        A `vk.train.Run` whose `model` is the trained student.

    Raises:
        ValueError: for a task other than classification or segmentation, a teacher
            that does not fit `data`, `temperature` <= 0, `alpha` outside [0, 1], or a
            bad `features` entry (naming it, with the layers' shapes).
        TypeError: for a teacher that is not a Keras model.
    """
    from visionkit.train.fit import fit
    from visionkit.train.precision import rebuild_model

    if not isinstance(data, Data):
        raise TypeError(f"Expected data as a visionkit.data.Data; received {type(data).__name__}.")
    if not data.task.distillable:  # one softmax distribution per image or per pixel
        raise ValueError(f"distill supports the tasks {tasks_with('distillable')}; received a "
                         f"{data.task.name!r} data set.")
    if not isinstance(teacher, keras.Model):
        raise TypeError(f"Expected teacher as a trained keras.Model; received "
                        f"{type(teacher).__name__}.")
    if not float(temperature) > 0:
        raise ValueError(f"Expected temperature > 0; received temperature={temperature!r}.")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"Expected alpha (the hard-label loss's weight) in [0, 1]; received "
                         f"alpha={alpha!r}.")
    for key in ("adversarial", "fine_tune"):
        if fit_options.get(key) is not None:
            raise ValueError(f"distill does not take {key}= yet; received {key}="
                             f"{fit_options[key]!r}.")
    check_model_against_data(teacher, data)
    teacher_probabilities = _probabilities(teacher, "teacher")

    def build() -> keras.Model:
        # Called by fit inside its precision policy and strategy scope.
        if isinstance(student, keras.Model):
            model = rebuild_model(student, keras.config.dtype_policy().name,
                                  force=tf.distribute.has_strategy())
        elif isinstance(student, str):
            model = build_model(student, input_shape=data.input_shape,
                                num_classes=data.num_classes, **(model_kwargs or {}))
        else:
            model = student()
        if not isinstance(model, keras.Model):
            raise TypeError("Expected the student function to return a keras.Model; it "
                            f"returned {type(model).__name__}.")
        check_model_against_data(model, data)
        feature_losses, feature_weights = _feature_losses(teacher, model, features)
        soft = SoftTargetDistillation(temperature, teacher_probabilities,
                                      _probabilities(model, "student"))
        return Distiller(teacher, model, [soft, *feature_losses],
                         distillation_loss_weights=[1.0, *feature_weights],
                         student_loss_weight=float(alpha), name=f"distill_{model.name}")

    if model_kwargs and not isinstance(student, str):
        raise ValueError("model_kwargs applies to a student given by name.")
    trainable = teacher.trainable
    try:
        return fit(build, data, **fit_options)
    finally:
        teacher.trainable = trainable  # Keras's Distiller freezes the teacher in place


def distill_from_recipe(recipe: Any, data: Data, run_dir: str | None) -> Callable[..., Any]:
    """`distill` bound to the recipe's teacher and `distill:` settings; called like `fit`
    with the recipe's model as the student."""
    import functools

    settings = recipe.distill
    return functools.partial(
        distill, teacher_from_recipe(recipe, data, run_dir),
        temperature=settings.temperature, alpha=settings.alpha,
        features=[feature.model_dump() for feature in settings.features])


def teacher_from_recipe(recipe: Any, data: Data, run_dir: str | None) -> keras.Model:
    """The recipe's teacher: loaded from `distill.teacher.checkpoint`, or built and
    trained first on the same data (run directory `RUN_DIR/teacher`)."""
    from visionkit.train.fit import fit

    spec = recipe.distill.teacher
    if spec.checkpoint is not None:
        return keras.saving.load_model(spec.checkpoint)
    model = build_model(spec.name, input_shape=data.input_shape,
                        num_classes=data.num_classes, **spec.args)
    options = recipe.train
    run = fit(model, data, epochs=spec.epochs, learning_rate=spec.learning_rate,
              run_dir=os.path.join(run_dir, "teacher") if run_dir else None,
              steps_per_epoch=options.steps_per_epoch,
              validation_steps=options.validation_steps, seed=recipe.seed,
              verbose=options.verbose)
    return run.model
