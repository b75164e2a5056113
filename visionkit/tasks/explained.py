"""What the tasks that explain their models share: Grad-CAM heat maps of their targets."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from visionkit.interpret.attributions import grad_cam
from visionkit.vocabulary import Task

__all__ = ["ExplainedTask"]


class ExplainedTask(Task):
    """A task whose `explain_target` Grad-CAM can follow (`fit(explain_every=...)`)."""

    def explain_heatmaps(self, model: keras.Model, images: Any) -> np.ndarray:
        """Grad-CAM `[N, H, W]` in 0..1 of the task's target (the predicted class)."""
        return np.asarray(grad_cam(model, images, task=self))
