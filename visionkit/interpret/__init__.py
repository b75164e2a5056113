"""Interpretation: occlusion, filters, activations, DeepDream, embeddings, attributions.

Every function takes a Keras model of any task and shape (Sequential, functional,
subclassed, sub-models nested at any depth, several outputs chosen with `output=`),
resolved once by `ModelAdapter`, raw images as NumPy or tensors, and returns NumPy. Bad
arguments raise `ArgumentError` (a ValueError) naming the argument and its valid range.
What is explained is a target object asked from the task (`targets`); the loops run as
batched `tf.function`s.

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> vk.interpret.grad_cam(model, np.zeros((1, 24, 32, 3)), target=2).shape
(1, 24, 32)
"""

from visionkit.interpret import metrics
from visionkit.interpret.activations import activations, weights
from visionkit.interpret.adapter import ModelAdapter, OutputHead, adapt
from visionkit.interpret.adversarial import pgd
from visionkit.interpret.attributions import fgsm, grad_cam, integrated_gradients, saliency
from visionkit.interpret.cams import (
    eigen_cam,
    grad_cam_plus_plus,
    hires_cam,
    layer_cam,
    score_cam,
)
from visionkit.interpret.checks import ArgumentError, PixelRangeWarning
from visionkit.interpret.comparison import Comparison, compare
from visionkit.interpret.dream import deep_dream
from visionkit.interpret.embed import Embedding, embed
from visionkit.interpret.error_analysis import ErrorAnalysis, error_analysis
from visionkit.interpret.feature_vis import colour_decorrelation
from visionkit.interpret.filters import filter_activations, filters, top_activating
from visionkit.interpret.layers import conv_layer_names, feature_model, find_layer
from visionkit.interpret.occlusion import occlusion
from visionkit.interpret.pointing import pointing_game
from visionkit.interpret.report import report
from visionkit.interpret.style import StyleTransfer, gram_matrix, style_transfer
from visionkit.interpret.targets import (
    ClassScore,
    DetectionScore,
    SegmentationScore,
    Target,
    resolve_target,
)

__all__ = [
    "ArgumentError",
    "ClassScore",
    "Comparison",
    "DetectionScore",
    "Embedding",
    "ErrorAnalysis",
    "ModelAdapter",
    "OutputHead",
    "PixelRangeWarning",
    "SegmentationScore",
    "StyleTransfer",
    "Target",
    "activations",
    "adapt",
    "colour_decorrelation",
    "compare",
    "conv_layer_names",
    "deep_dream",
    "eigen_cam",
    "embed",
    "error_analysis",
    "feature_model",
    "fgsm",
    "gram_matrix",
    "filter_activations",
    "filters",
    "find_layer",
    "grad_cam",
    "grad_cam_plus_plus",
    "hires_cam",
    "integrated_gradients",
    "layer_cam",
    "metrics",
    "occlusion",
    "pgd",
    "pointing_game",
    "report",
    "resolve_target",
    "saliency",
    "score_cam",
    "style_transfer",
    "top_activating",
    "weights",
]
