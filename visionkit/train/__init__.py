"""Training and evaluation with task defaults, run directories and plots.

Example:

>>> import visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16)).take(64, 32)
>>> run = vk.train.fit("simple_cnn", data, epochs=1, verbose=0)
"""

from visionkit.train import defaults, distribute, losses, metrics
from visionkit.train.distill import distill
from visionkit.train.evaluate import evaluate
from visionkit.train.fit import Run, fit
from visionkit.train.lr_finder import LearningRateRange, find_learning_rate
from visionkit.train.optimizers import make_optimizer
from visionkit.train.precise_bn import recompute_batch_norm_statistics

__all__ = ["LearningRateRange", "Run", "defaults", "distill", "distribute", "evaluate",
           "find_learning_rate", "fit", "losses", "make_optimizer", "metrics",
           "recompute_batch_norm_statistics"]
