"""Matplotlib figures: training curves, confusion matrices, image grids.

Functions here draw what other modules compute; they return the path written (or the
figure when no path is given). They use matplotlib's non-interactive Agg canvas, so
they run on servers without a display.
"""

from visionkit.plot.curves import curves
from visionkit.plot.matrix import confusion_matrix

__all__ = ["confusion_matrix", "curves"]
