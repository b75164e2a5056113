"""Embedding (metric-learning) builders (each registers itself in the model registry)."""

from visionkit.models.embedding.siamese import siamese, siamese_pair

__all__ = ["siamese", "siamese_pair"]
