"""visionkit: a Keras 3 / TensorFlow toolkit for applied computer vision.

Example:

>>> import visionkit as vk
>>> data = vk.data.digits(image_size=(32, 32))
>>> model = vk.models.build("simple_cnn", input_shape=data.input_shape,
...                         num_classes=data.num_classes)
"""

from visionkit import data, export, interpret, models, plot, tasks, train, vocabulary
from visionkit.version import __version__

__all__ = ["__version__", "data", "export", "interpret", "models", "plot", "tasks", "train",
           "vocabulary"]
