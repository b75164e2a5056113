"""Serializable layers, one per file, registered under the "visionkit" package."""

from visionkit.models.layers.max_unpooling import MaxUnpooling2D

__all__ = ["MaxUnpooling2D"]
