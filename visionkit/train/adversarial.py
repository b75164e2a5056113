"""Adversarial training (Madry et al. 2018) and robust evaluation.

`AdversarialTraining` wraps a model so that every training step first attacks its batch
with projected gradient descent (or FGSM) against the task's loss and the true targets,
then takes the usual optimizer step on the attacked images: the attack and the update
are one compiled function (Keras's `train_step`, inside its `tf.function`). The attack
runs the model in inference mode (`training=False`: batch-norm statistics and dropout
are left alone while the batch is attacked), as TRADES's and most reference code does.
With `clean_fraction` f > 0, each batch keeps its first `round(f * B)` images clean and
attacks the rest (the mixed batches of Goodfellow et al. 2015, section 5, and Kurakin
et al. 2017, which trade some robustness for clean accuracy).
`vk.train.fit(model, data, adversarial={...})` builds it; `adversarial_dataset` attacks a
whole split for `vk.train.evaluate(..., attack={...})` (robust accuracy).

Reference:
    - [Towards Deep Learning Models Resistant to Adversarial Attacks](
      https://arxiv.org/abs/1706.06083) (Madry et al., ICLR 2018)
    - [Explaining and Harnessing Adversarial Examples](https://arxiv.org/abs/1412.6572)
      (Goodfellow et al., ICLR 2015)
    - [Adversarial Machine Learning at Scale](https://arxiv.org/abs/1611.01236)
      (Kurakin et al., ICLR 2017)

Example:

>>> import visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16)).take(32, 16)
>>> model = vk.models.build("simple_cnn", data.input_shape, 10, filters=(4,))
>>> robust = vk.train.evaluate(model, data, attack={"epsilon": 8, "steps": 2})
>>> robust["attack"]["epsilon"], robust["num_examples"]
(8.0, 16)

`vk.train.fit(model, data, adversarial={"method": "pgd", "epsilon": 8, "steps": 7})`
trains with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.attacks import Attack, parse_attack
from visionkit.train.wrapper import TrainingWrapper
from visionkit.vocabulary import tasks_with

__all__ = ["AdversarialTraining", "adversarial_dataset", "check_attack_task"]

def check_attack_task(task: Any, argument: str) -> None:
    """Raises ValueError naming `argument` for a task an attack does not support (the
    task's `attackable`: its loss leads an attack to the pixels with the true targets)."""
    if not getattr(task, "attackable", False):
        raise ValueError(f"{argument} supports the tasks {tasks_with('attackable')}; received a "
                         f"{getattr(task, 'name', task)!r} data set.")


class AdversarialTraining(TrainingWrapper, keras.Model):
    """Trains `model` on adversarial examples of each batch (Madry et al. 2018).

    Args:
        model: the Keras model trained (raw 0..255 pixels in, the task's outputs out).
        attack: an `Attack` or a dict like `{"method": "pgd", "epsilon": 8, "steps": 7}`
            (pixel units; see `visionkit.attacks.parse_attack`); the dict may also hold
            `clean_fraction`.
        clean_fraction: the fraction of each batch left clean, in [0, 1) (the first
            `round(clean_fraction * B)` images; the data are shuffled). Defaults to 0
            (every image attacked, as Madry et al.).
        seed: seed of the random starts (a new draw every step). Defaults to None.

    Compile it with the task's loss: the attack follows that loss's gradient against the
    batch's true targets.

    Raises:
        ValueError: for bad attack settings (naming the key).
    """

    def __init__(self, model: keras.Model, attack: Attack | Mapping[str, Any],
                 seed: int | None = None, name: str | None = None,
                 clean_fraction: float | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or f"adversarial_{model.name}", **kwargs)
        self.inner_model = model
        if isinstance(attack, Mapping) and "clean_fraction" in attack:
            attack = dict(attack)
            from_dict = attack.pop("clean_fraction")
            if clean_fraction is not None and from_dict != clean_fraction:
                raise ValueError(f"Received two clean fractions: {from_dict!r} in the attack "
                                 f"and clean_fraction={clean_fraction!r}.")
            clean_fraction = from_dict
        clean_fraction = 0.0 if clean_fraction is None else clean_fraction
        if isinstance(clean_fraction, bool) or not isinstance(clean_fraction, (int, float)) \
                or not 0.0 <= float(clean_fraction) < 1.0:
            raise ValueError("Expected adversarial['clean_fraction'] (the share of each "
                             "batch left clean) as a number in [0, 1); received "
                             f"{clean_fraction!r}.")
        self.clean_fraction = float(clean_fraction)
        self.attack = parse_attack(attack, "adversarial")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._attack_loss: Any = None
        if model.built:  # its variables exist: callbacks (backups) may read them now
            self.built = True

    @property
    def trained_model(self) -> keras.Model:
        return self.inner_model

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.inner_model(inputs, training=training)

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, **kwargs: Any) -> None:
        if loss is None:
            raise ValueError("Adversarial training needs the task's loss to attack with; "
                             "received loss=None.")
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        self._attack_loss = keras.losses.get(loss) if isinstance(loss, str) else loss

    def adversarial_examples(self, images: tf.Tensor, targets: Any) -> tf.Tensor:
        """The attacked images of a batch (graph code)."""
        loss = self._attack_loss
        model = self.inner_model
        return self.attack.run(lambda x: loss(targets, model(x, training=False)), images,
                               seed=self.seed_generator)

    def train_step(self, data: Any) -> Any:
        images, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        attacked = self.adversarial_examples(images, targets)
        if self.clean_fraction > 0:
            batch = tf.shape(images)[0]
            clean = tf.cast(tf.round(self.clean_fraction * tf.cast(batch, tf.float32)),
                            tf.int32)
            keep = tf.reshape(tf.range(batch) < clean,
                              tf.concat([[batch], tf.ones([tf.rank(images) - 1], tf.int32)], 0))
            attacked = tf.where(keep, tf.cast(images, attacked.dtype), attacked)
        return super().train_step(
            keras.utils.pack_x_y_sample_weight(attacked, targets, sample_weight))


def adversarial_dataset(model: keras.Model, dataset: tf.data.Dataset, attack: Attack,
                        loss: Any, seed: int | None = 0) -> tf.data.Dataset:
    """`dataset` with every batch's images replaced by their attacked copies.

    Each batch is attacked by one compiled function against `loss` and the batch's own
    targets (the attacked images are kept in memory, batched as the input was).

    Args:
        model: the model attacked.
        dataset: batched `(images, targets)`.
        attack: the attack.
        loss: the task's loss `(targets, outputs) -> scalar`.
        seed: seed of the random starts. Defaults to 0.

    Returns:
        A batched `tf.data.Dataset` of `(adversarial images, targets)`.

    Raises:
        ValueError: for an empty dataset.
    """
    generator = keras.random.SeedGenerator(seed)

    @tf.function(reduce_retracing=True)
    def attack_batch(images, targets):
        images = tf.cast(images, tf.float32)
        return attack.run(lambda x: loss(targets, model(x, training=False)), images,
                          seed=generator)

    attacked, targets, batch = [], [], None
    for images, batch_targets in dataset:
        batch = batch or int(images.shape[0])
        attacked.append(attack_batch(images, batch_targets).numpy())
        targets.append(np.asarray(batch_targets))
    if not attacked:
        raise ValueError("Cannot attack an empty dataset: it yielded no batches.")
    return tf.data.Dataset.from_tensor_slices(
        (np.concatenate(attacked), np.concatenate(targets))).batch(batch)
