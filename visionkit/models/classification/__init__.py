"""Classification builders (each registers itself in the model registry)."""

from visionkit.models.classification.alexnet import alexnet, zfnet
from visionkit.models.classification.applications import (
    densenet121,
    efficientnet_b0,
    efficientnet_b1,
    mobilenet_v2,
    mobilenet_v3_large,
    mobilenet_v3_small,
    resnet50_v2,
)
from visionkit.models.classification.densenet_bc import densenet_bc
from visionkit.models.classification.googlenet import googlenet
from visionkit.models.classification.inception import inception_mini
from visionkit.models.classification.lenet import lenet5
from visionkit.models.classification.preact_resnet import (
    preact_resnet18,
    preact_resnet34,
    preact_resnet50,
    wide_resnet,
)
from visionkit.models.classification.resnet import resnet18, resnet34, resnet50
from visionkit.models.classification.simple_cnn import simple_cnn
from visionkit.models.classification.squeezenet import squeezenet
from visionkit.models.classification.vgg import vgg11, vgg16

__all__ = [
    "alexnet",
    "densenet121",
    "densenet_bc",
    "efficientnet_b0",
    "efficientnet_b1",
    "googlenet",
    "inception_mini",
    "lenet5",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "preact_resnet18",
    "preact_resnet34",
    "preact_resnet50",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet50_v2",
    "simple_cnn",
    "squeezenet",
    "vgg11",
    "vgg16",
    "wide_resnet",
    "zfnet",
]
