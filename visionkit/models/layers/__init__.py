"""Serializable layers, one per file, registered under the "visionkit" package."""

from visionkit.models.layers.crop_to_reference import CropToReference
from visionkit.models.layers.max_unpooling import MaxUnpooling2D
from visionkit.models.layers.pad_to_multiple import PadToMultiple

__all__ = ["CropToReference", "MaxUnpooling2D", "PadToMultiple"]
