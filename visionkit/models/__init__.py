"""Model builders, the registry and model summaries.

Example:

>>> import visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(32, 32, 3), num_classes=10)
"""

from visionkit.models import classification  # noqa: F401  (registers the builders)
from visionkit.models.registry import available, build, get, register

__all__ = ["available", "build", "get", "register"]
