"""Classification builders (each registers itself in the model registry)."""

from visionkit.models.classification.simple_cnn import simple_cnn

__all__ = ["simple_cnn"]
