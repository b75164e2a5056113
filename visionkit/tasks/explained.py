"""What the tasks that explain their models share: Grad-CAM heat maps of their targets, and
the synthetic shapes scenes their `shapes_data` sets are made of."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from visionkit.data.synthetic import ShapeScenes, generate_shapes
from visionkit.interpret.attributions import grad_cam
from visionkit.vocabulary import Task

__all__ = ["ExplainedTask"]


class ExplainedTask(Task):
    """A task whose `explain_target` Grad-CAM can follow (`fit(explain_every=...)`)."""

    def explain_heatmaps(self, model: keras.Model, images: Any) -> np.ndarray:
        """Grad-CAM `[N, H, W]` in 0..1 of the task's target (the predicted class)."""
        return np.asarray(grad_cam(model, images, task=self))

    # `Task.shapes_data` documents it: every task draws its scenes here and makes its
    # own data set of them in `_data_from_scenes`.
    def shapes_data(self, class_names: tuple[str, ...], n: int, image_size: tuple[int, int],
                    seed: int | None, noise: float, shapes_per_image: tuple[int, int] | None,
                    validation_split: float, batch_size: int, augment: Any) -> Any:
        per_image = tuple(shapes_per_image or self.shapes_per_image)
        scenes = generate_shapes(n, image_size=image_size, seed=seed, classes=class_names,
                                 shapes_per_image=per_image, noise=noise)
        return self._data_from_scenes(scenes, per_image, validation_split=validation_split,
                                      batch_size=batch_size, augment=augment, seed=seed)

    def _data_from_scenes(self, scenes: ShapeScenes, per_image: tuple[int, int],
                          **split: Any) -> Any:
        """The task's `visionkit.data.Data` of `scenes`; `split` holds `validation_split`,
        `batch_size`, `augment` and `seed` for the data constructor."""
        raise NotImplementedError(f"Task {self.name!r} has no synthetic shapes set.")
