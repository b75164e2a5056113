"""A Keras callback that logs Grad-CAM overlays of a few images to TensorBoard.

`fit(..., explain_every=N)` adds it: every `N` epochs it computes Grad-CAM of the
predicted class on the same few validation images and writes each image with its heat map
blended over it as one TensorBoard image summary (tag `grad_cam`, step = epoch), so a
user sees in TensorBoard where the model looks as it learns. The heat maps come from the
`explain` function it is handed (`fit` hands it the task's `explain_heatmaps`, Grad-CAM
through `visionkit.interpret`), so `visionkit.train` does not import the interpretation
package above it.

Example:

>>> import numpy as np, tempfile, visionkit as vk
>>> model = vk.models.build("simple_cnn", (16, 16, 3), 3, filters=(4, 8))
>>> callback = ExplainCallback(np.zeros((2, 16, 16, 3)), tempfile.mkdtemp(), every=1,
...                            explain=vk.interpret.grad_cam)
>>> callback.set_model(model)
>>> callback.on_epoch_end(0)
>>> callback.logged_epochs
[1]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["ExplainCallback", "overlay_heatmaps"]

_ALPHA = 0.5  # opacity of the heat map over the image


def overlay_heatmaps(images: np.ndarray, maps: np.ndarray, alpha: float = _ALPHA) -> np.ndarray:
    """Heat maps `[N, H, W]` in 0..1 blended (jet colours) over images `[N, H, W, C]`.

    Returns:
        uint8 `[N, H, W, 3]`.
    """
    import matplotlib

    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    colours = matplotlib.colormaps["jet"](np.clip(maps, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * np.clip(images[..., :3], 0, 255) + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


class ExplainCallback(keras.callbacks.Callback):
    """Logs Grad-CAM overlays of `images` to TensorBoard every `every` epochs.

    Args:
        images: `[N, H, W, C]` raw pixels (a few validation images).
        log_dir: TensorBoard folder (the run's `tensorboard/explain`).
        every: log after every this many epochs (>= 1).
        explain: `explain(model, images) -> [N, H, W]` heat maps in 0..1 (e.g.
            `vk.interpret.grad_cam`, or a task's `explain_heatmaps`).

    Attributes:
        logged_epochs: the (1-based) epochs logged so far.

    Raises:
        ValueError: naming `every` (not an integer >= 1) or `images` (not `[N, H, W, C]`).
    """

    def __init__(self, images: Any, log_dir: str | os.PathLike, every: int, *,
                 explain: Callable[[keras.Model, np.ndarray], Any]):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"Expected explain_every as an integer >= 1 (epochs between "
                             f"logged overlays); received explain_every={every!r}.")
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"Expected images [N, H, W, C] with N >= 1 for the overlays; "
                             f"received shape {images.shape}.")
        self.images = images
        self.log_dir = os.fspath(log_dir)
        self.every = int(every)
        self.explain = explain
        self.logged_epochs: list[int] = []
        self._writer = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        maps = np.asarray(self.explain(self.model, self.images))
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.image("grad_cam", overlay_heatmaps(self.images, maps), step=epoch + 1,
                             max_outputs=len(self.images),
                             description="Grad-CAM of the predicted class over the image")
        self._writer.flush()
        self.logged_epochs.append(epoch + 1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def explain_images(data: Any, count: int = 4) -> np.ndarray:
    """The first `count` validation (else training) images of a `Data`."""
    dataset = data.val if data.val is not None else data.train
    images = []
    for batch_images, _ in dataset:
        images.append(np.asarray(batch_images))
        if sum(len(b) for b in images) >= count:
            break
    return np.concatenate(images)[:count]
