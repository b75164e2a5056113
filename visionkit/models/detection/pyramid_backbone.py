"""`PyramidBackbone`: any visionkit backbone as the feature pyramid a detection head reads.

Detection heads read P3, P4 and P5 by layer name (`pyramid_level_inputs`); this model
wires the named visionkit backbone (own families or keras.applications) onto raw 0..255
pixels and ends each level in an identity layer named after it, so the heads find their
taps by name, never by index (STYLE.md, architecture 2).

Example:

>>> backbone = PyramidBackbone("resnet18", (64, 64, 3), options={"width_multiplier": 0.25})
>>> sorted(backbone.pyramid_level_inputs)
['P3', 'P4', 'P5']
"""

from __future__ import annotations

from typing import Any

import keras
from keras_cv.models import Backbone

from visionkit.models.backbones import backbone_features
from visionkit.models.common import raw_image_input

__all__ = ["PyramidBackbone", "PYRAMID_LEVELS"]

PYRAMID_LEVELS = ("P3", "P4", "P5")


@keras.saving.register_keras_serializable(package="visionkit")
class PyramidBackbone(Backbone):
    """A registry backbone exposing P3..P5 by layer name for detection heads.

    Args:
        backbone: a name from `vk.models.available_backbones()`.
        input_shape: `(height, width, 3)` of the raw images.
        options: the backbone family's options (e.g. `width_multiplier`). Defaults to none.
        weights: None, "imagenet" or a legacy keras.applications `.h5` file, loaded when
            built (not part of the config: a saved detector carries its own weights).

    Input shape:
        `[B, H, W, 3]` raw pixels 0..255.

    Output shape:
        `{"P3": ..., "P4": ..., "P5": ...}`, also reachable by layer name through
        `pyramid_level_inputs`.
    """

    def __init__(self, backbone: str, input_shape: tuple[int, int, int],
                 options: dict[str, Any] | None = None, weights: Any = None,
                 **kwargs: Any) -> None:
        inputs = raw_image_input(tuple(input_shape))
        features = backbone_features(backbone, inputs, weights=weights, **dict(options or {}))
        outputs = {level: keras.layers.Identity(name=f"pyramid_{level}")(features[level])
                   for level in PYRAMID_LEVELS}
        kwargs.setdefault("name", f"{backbone}_pyramid")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone_name = backbone
        self.image_shape = tuple(int(v) for v in input_shape)
        self.options = dict(options or {})
        self.pyramid_level_inputs = {level: f"pyramid_{level}" for level in PYRAMID_LEVELS}

    def get_config(self) -> dict[str, Any]:
        return {"backbone": self.backbone_name, "input_shape": self.image_shape,
                "options": self.options, "name": self.name, "trainable": self.trainable}
