"""Backbones: raw pixels in, the `{"P1": ..., "P5": ...}` feature dict out.

Example:

>>> from visionkit.models.backbones import build_backbone
>>> backbone = build_backbone("vgg11", (32, 32, 3), width_multiplier=0.125)
>>> sorted(backbone.output)
['P1', 'P2', 'P3', 'P4', 'P5']
"""

from visionkit.models.backbones.factory import (
    available_backbones,
    backbone_features,
    build_backbone,
)

__all__ = ["available_backbones", "backbone_features", "build_backbone"]
