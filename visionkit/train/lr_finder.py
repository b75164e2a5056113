"""The learning-rate range test (Smith 2017): a short exponential sweep of the rate.

Reference:
    - [Cyclical Learning Rates for Training Neural Networks](
      https://arxiv.org/abs/1506.01186) (Smith, WACV 2017), section 3.3: train a few
      hundred steps while the rate grows from very small to large, and read off where the
      loss falls fastest and where it stops falling.
    - The "valley" rule is fastai's default since fastai 2.5 (`valley`, by Zachary
      Mueller): the longest stretch over which the smoothed loss keeps falling (the
      longest decreasing run of steps, gaps allowed), and the rate halfway along it.
    - The "minimum / 10" rule (the default) is fastai's former `lr_min` (Howard & Gugger
      2020, "Fastai: A Layered API for Deep Learning"): the rate at the smoothed loss's
      minimum is already too large to train at, a tenth of it is on the falling slope.
      Measured with simple_cnn on digits against a grid of fixed rates (Adam, 3 epochs,
      best validation loss at 3e-3): minimum / 10 suggested 2.3e-3, the steepest fall
      3.5e-4 and the valley 1.5e-4 (the loss falls fastest where the rate first starts
      to move it, far below the best rate to train at). The sweep
      stops on a
      bias-corrected moving average of the loss, as fastai's does; the rate is read off a
      centred (zero-lag) Gaussian smoothing, since a moving average trails a rising loss
      by its time constant and would move the minimum to larger rates.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Any

import keras
import numpy as np

from visionkit.models import build
from visionkit.plot._figure import new_figure, save

__all__ = ["LearningRateRange", "find_learning_rate", "SUGGESTIONS"]

SUGGESTIONS = ("minimum", "steepest", "valley")


@dataclasses.dataclass
class LearningRateRange:
    """The outcome of a range test.

    Attributes:
        rates: learning rate of each step, float64 `[S]` (S <= `num_steps`: the sweep
            stops once the loss diverges).
        losses: training loss of each step's batch, float64 `[S]`.
        smoothed: `losses` smoothed with a centred Gaussian of `sigma` steps, `[S]`
            (finite steps only; NaN where the loss was not finite).
        suggestion: the suggested learning rate.
        method: how `suggestion` was read off ("valley", "minimum" or "steepest").
        minimum: the rate at the smoothed loss's minimum.
        steepest: the rate where the smoothed loss falls fastest per decade of rate.
        valley: the rate halfway along the smoothed loss's longest falling stretch.
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    method: str
    minimum: float
    steepest: float
    valley: float = math.nan

    def plot(self, path: str | os.PathLike | None = None) -> Any:
        """Loss against learning rate (log axis), the suggestion marked.

        Returns:
            The path written, or the matplotlib `Figure` when `path` is None.
        """
        figure = new_figure(6, 4)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot(self.rates, self.losses, color="0.75", linewidth=1, label="loss per step")
        axes.plot(self.rates, self.smoothed, color="C0", linewidth=2, label="smoothed")
        axes.axvline(self.suggestion, color="C3", linestyle="--",
                     label=f"suggested {self.suggestion:.2g} ({self.method})")
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("training loss")
        finite = self.smoothed[np.isfinite(self.smoothed)]
        if finite.size:  # keep the divergence from flattening the interesting part
            low, high = float(finite.min()), float(finite[0])
            axes.set_ylim(low - 0.1 * (high - low + 1e-9), high + 0.5 * (high - low + 1e-9))
        axes.set_title("learning-rate range test")
        axes.legend(loc="best")
        return save(figure, path)


class _Sweep(keras.callbacks.Callback):
    """Sets an exponentially growing rate before each step and records each step's loss.

    Every "epoch" of the sweep is one step, so Keras's `loss` log is that batch's loss
    (within an epoch Keras reports a running mean).
    """

    def __init__(self, rates: np.ndarray, smoothing: float, divergence: float) -> None:
        super().__init__()
        self.rates, self.smoothing, self.divergence = rates, smoothing, divergence
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._average = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.optimizer.learning_rate.assign(float(self.rates[epoch]))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.smoothed.append(math.nan)
            self.model.stop_training = True
            return
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.losses))
        self.smoothed.append(smoothed)
        best = min(s for s in self.smoothed if math.isfinite(s))
        if len(self.smoothed) > 5 and smoothed > self.divergence * best:
            self.model.stop_training = True


def find_learning_rate(
    model: keras.Model | str,
    data: Any,
    *,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    divergence: float = 4.0,
    sigma: float | None = None,
    skip_end: int = 5,
    method: str = "minimum",
    plot: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> LearningRateRange:
    """The learning-rate range test: trains `num_steps` batches at rates growing from
    `min_lr` to `max_lr`, and suggests a rate.

    The rate of step `i` is `min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))`. Each
    step's training loss is smoothed with a bias-corrected moving average (`smoothing`);
    the sweep stops early once the smoothed loss exceeds `divergence` times its minimum
    or becomes NaN. The model's weights (batch-norm statistics included) are restored
    afterwards, so the test leaves the model as it found it, except that it is compiled
    for the sweep (`vk.train.fit` compiles it again).

    Suggestion (`method`):
    - "minimum" (default): a tenth of the rate at the smoothed loss's minimum
      (fastai's former `lr_min`; Howard & Gugger 2020).
    - "steepest": the rate where the smoothed loss falls fastest per decade of rate,
      before its minimum (Smith 2017, section 3.3; fastai's former `lr_steep`, PyTorch
      Lightning's suggestion).
    - "valley": halfway along the longest stretch of steps over which the smoothed loss
      keeps falling (fastai's `valley`, its default since 2.5).

    Args:
        model: a `keras.Model`, or a registry name built for `data` with `model_kwargs`.
        data: a `visionkit.data.Data`; its task compiles the model and its train split
            (with its augmentation) feeds the sweep.
        optimizer: the optimizer name (or instance) the rate is for. Defaults to "adam".
        min_lr, max_lr: the swept range. Defaults to 1e-6 and 1.0.
        num_steps: steps of the sweep. Defaults to 100.
        smoothing: moving-average factor of the loss, in [0, 1). Defaults to 0.98.
        divergence: stop once the moving average exceeds this times its minimum.
            Defaults to 4.0.
        sigma: width in steps of the Gaussian the rate is read off. Defaults to
            `max(1, num_steps / 25)` (4 steps of 100: single batches of 32 images vary
            by +-0.5 in loss).
        skip_end: last steps left out when reading off the rate (fastai's `skip_end`):
            a model whose loss has not diverged by `max_lr` often shows a few lucky
            batches there. Defaults to 5.
        method: "minimum", "steepest" or "valley". Defaults to "minimum".
        plot: a PNG path for `LearningRateRange.plot`, or None.
        model_kwargs: keyword arguments for a model given by name.

    Returns:
        A `LearningRateRange`.

    Raises:
        ValueError: for a bad range, step count, smoothing or method, or when every
            step's loss is NaN or infinite.

    Warns:
        UserWarning: when the smoothed loss never falls below its value at `min_lr`
            (the suggestion is then the bottom of the range, not a measured rate).

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16)).take(64, 32)
    >>> model = vk.models.build("simple_cnn", data.input_shape, data.num_classes)
    >>> found = vk.train.find_learning_rate(model, data, num_steps=8)
    >>> len(found.rates) <= 8
    True
    """
    from visionkit.train.optimizers import make_optimizer

    if not 0 < float(min_lr) < float(max_lr):
        raise ValueError(f"Expected 0 < min_lr < max_lr; received min_lr={min_lr!r}, "
                         f"max_lr={max_lr!r}.")
    if int(num_steps) < 2:
        raise ValueError(f"Expected num_steps >= 2; received num_steps={num_steps!r}.")
    if not 0 <= float(smoothing) < 1:
        raise ValueError(f"Expected 0 <= smoothing < 1; received smoothing={smoothing!r}.")
    if method not in SUGGESTIONS:
        raise ValueError(f"Unknown method {method!r}; expected one of {SUGGESTIONS}.")
    if isinstance(model, str):
        model = build(model, input_shape=data.input_shape, num_classes=data.num_classes,
                      **(model_kwargs or {}))
    rates = float(min_lr) * (float(max_lr) / float(min_lr)) ** (
        np.arange(int(num_steps)) / (int(num_steps) - 1))
    weights = model.get_weights()
    if isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = optimizer.__class__.from_config(
            {**optimizer.get_config(), "learning_rate": float(min_lr)})
    else:
        optimizer = make_optimizer(optimizer, float(min_lr))
    data.task.compile(model, optimizer, num_classes=data.num_classes)
    sweep = _Sweep(rates, float(smoothing), float(divergence))
    try:
        model.fit(data.train.repeat(), epochs=int(num_steps), steps_per_epoch=1,
                  callbacks=[sweep], verbose=0, shuffle=False)
    finally:
        model.set_weights(weights)
    width = float(sigma) if sigma is not None else max(1.0, int(num_steps) / 25)
    result = _read_off(rates[:len(sweep.losses)], np.asarray(sweep.losses, np.float64),
                       method, width, int(skip_end))
    if plot is not None:
        result.plot(plot)
    return result


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian smoothing (edges padded with the end values)."""
    radius = int(math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    padded = np.pad(values, radius, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def _read_off(rates: np.ndarray, losses: np.ndarray, method: str,
              sigma: float = 1.0, skip_end: int = 0) -> LearningRateRange:
    """The suggested rate of a finished sweep (its last `skip_end` finite steps aside)."""
    finite = np.isfinite(losses)
    smoothed = np.full(losses.shape, np.nan)
    if finite.sum() >= 2:
        smoothed[finite] = _smooth(losses[finite], sigma)
    if finite.sum() < 2:
        raise ValueError("The range test's loss was NaN or infinite from the first steps "
                         f"(losses {losses[:5].tolist()}); lower min_lr or check the data.")
    valid_rates, valid = rates[finite], smoothed[finite]
    if skip_end and len(valid) > skip_end + 2:
        valid_rates, valid = valid_rates[:-skip_end], valid[:-skip_end]
    at_minimum = int(np.argmin(valid))
    minimum = float(valid_rates[at_minimum])
    if at_minimum == 0:
        # Every rule reads a rate off a falling loss; without one the suggestion is the
        # bottom of the range (the "minimum" rule a tenth below it), not a rate measured
        # to train.
        warnings.warn(
            f"The range test's smoothed loss never fell below its value at the first "
            f"rate, {valid_rates[0]:.2g} (from {valid[0]:.4g} to {valid[-1]:.4g} at "
            f"{valid_rates[-1]:.2g}): the suggested rate is not read off a falling loss. "
            "Lower min_lr, or check that the model trains (frozen layers, a loss that "
            "cannot change).", stacklevel=3)
    # Slope per decade, up to the minimum (beyond it the loss rises by construction).
    stop = max(at_minimum, 1) + 1
    slopes = np.gradient(valid[:stop], np.log10(valid_rates[:stop]))
    steepest = float(valid_rates[int(np.argmin(slopes))])
    start, end = longest_valley(valid)
    valley = float(valid_rates[start + (end - start) // 2])
    suggestion = {"minimum": minimum / 10.0, "steepest": steepest, "valley": valley}[method]
    return LearningRateRange(rates=rates, losses=losses, smoothed=smoothed,
                             suggestion=suggestion, method=method, minimum=minimum,
                             steepest=steepest, valley=valley)


def longest_valley(losses: np.ndarray) -> tuple[int, int]:
    """First and last step of the longest falling stretch of a (smoothed) loss curve.

    The stretch is the longest strictly decreasing subsequence of `losses` (steps in
    between may be skipped, so single noisy steps do not cut it), as fastai's `valley`
    finds it; it returns the indices of its first and last elements.

    Example:

    >>> longest_valley(np.array([3.0, 3.1, 2.0, 2.5, 1.5, 1.0, 4.0]))
    (0, 5)
    """
    values = np.asarray(losses, np.float64)
    count = len(values)
    if count == 0:
        raise ValueError("Expected a non-empty loss curve.")
    length = np.ones(count, np.int64)   # longest decreasing subsequence ending at i
    previous = np.full(count, -1, np.int64)
    for index in range(1, count):
        earlier = np.flatnonzero(values[:index] > values[index])
        if earlier.size:
            best = earlier[np.argmax(length[earlier])]
            length[index], previous[index] = length[best] + 1, best
    end = int(np.argmax(length))  # the first index reaching the longest length
    start = end
    while previous[start] >= 0:
        start = int(previous[start])
    return start, end
