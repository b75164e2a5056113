"""Training curves: each metric against epochs, train and validation together."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from visionkit.plot._figure import new_figure, save

__all__ = ["curves"]


def curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike | None = None,
           title: str | None = None) -> str | Figure:
    """Plots training curves, one panel per metric, validation dashed beside training.

    Args:
        history: `{"loss": [...], "val_loss": [...], "accuracy": [...], ...}` as in
            `keras.callbacks.History.history` or a run's history.csv.
        path: PNG file to write. Defaults to None (return the figure).
        title: figure title.

    Returns:
        The path written, or the `Figure` when `path` is None.

    Example:

    >>> figure = curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    >>> [axis.get_title() for axis in figure.axes]
    ['loss']
    """
    names = [k for k in history if not k.startswith("val_") and k not in ("epoch", "lr")]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    if not names:
        raise ValueError(f"Expected a history with at least one metric; received keys "
                         f"{sorted(history)}.")
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = new_figure(4.2 * columns, 3.2 * rows)
    for index, name in enumerate(names):
        axis = figure.add_subplot(rows, columns, index + 1)
        for key, style, label in ((name, "-", "train"), (f"val_{name}", "--", "validation")):
            values = [float(v) for v in history.get(key, [])]
            if values:
                axis.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3,
                          label=label)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    return save(figure, path)
