"""Matplotlib figures: training curves, confusion matrices, image grids.

Functions here draw what other modules compute; they return the path written (or the
figure when no path is given). They use matplotlib's non-interactive Agg canvas, so
they run on servers without a display.
"""

from visionkit.plot.curves import curves
from visionkit.plot.grid import image_grid
from visionkit.plot.matrix import confusion_matrix
from visionkit.plot.overlay import heatmap_overlays
from visionkit.plot.scatter import embedding_scatter

__all__ = ["confusion_matrix", "curves", "embedding_scatter", "heatmap_overlays", "image_grid"]
