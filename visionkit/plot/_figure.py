"""Figure creation and saving on matplotlib's non-interactive canvas."""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["new_figure", "save"]


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (no display, no global pyplot state)."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: str | os.PathLike | None) -> str | Figure:
    """Writes `figure` to `path` (PNG), creating folders; returns the path or the figure."""
    if path is None:
        return figure
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path)
    return path
