"""Classification builders (each registers itself in the model registry)."""

from visionkit.models.classification.applications import (
    densenet121,
    efficientnet_b0,
    efficientnet_b1,
    mobilenet_v2,
    mobilenet_v3_large,
    mobilenet_v3_small,
    resnet50_v2,
)
from visionkit.models.classification.inception import inception_mini
from visionkit.models.classification.lenet import lenet5
from visionkit.models.classification.resnet import resnet18, resnet34, resnet50
from visionkit.models.classification.simple_cnn import simple_cnn
from visionkit.models.classification.squeezenet import squeezenet
from visionkit.models.classification.vgg import vgg11, vgg16

__all__ = [
    "densenet121",
    "efficientnet_b0",
    "efficientnet_b1",
    "inception_mini",
    "lenet5",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet50_v2",
    "simple_cnn",
    "squeezenet",
    "vgg11",
    "vgg16",
]
