"""Model builders, the registry, backbones and model summaries.

Example:

>>> import visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(32, 32, 3), num_classes=10)
>>> backbone = vk.models.build_backbone("resnet18", (64, 64, 3), width_multiplier=0.25)
>>> info = vk.models.summary(model, batch_size=32)
"""

from visionkit.models import (  # noqa: F401  (registers the builders)
    backbones,
    classification,
    detection,
    embedding,
    layers,
    pretrained,
    segmentation,
)
from visionkit.models.backbones import available_backbones, build_backbone
from visionkit.models.registry import available, build, get, register
from visionkit.models.summary import ModelSummary, summary

__all__ = [
    "ModelSummary",
    "available",
    "available_backbones",
    "build",
    "build_backbone",
    "get",
    "register",
    "summary",
]
