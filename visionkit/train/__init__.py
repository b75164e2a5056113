"""Training and evaluation with task defaults, run directories and plots.

Example:

>>> import visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16)).take(64, 32)
>>> run = vk.train.fit("simple_cnn", data, epochs=1, verbose=0)
"""

from visionkit.train import distribute, losses, metrics
from visionkit.train.evaluate import evaluate
from visionkit.train.fit import Run, fit
from visionkit.train.optimizers import make_optimizer

__all__ = ["Run", "distribute", "evaluate", "fit", "losses", "make_optimizer", "metrics"]
