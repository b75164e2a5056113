"""The Example sections of the model modules run as doctests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "visionkit.models",
    "visionkit.models.summary",
    "visionkit.models.backbones",
    "visionkit.models.backbones.factory",
    "visionkit.models.classification.lenet",
    "visionkit.models.classification.vgg",
    "visionkit.models.classification.resnet",
    "visionkit.models.classification.inception",
    "visionkit.models.classification.squeezenet",
    "visionkit.models.classification.applications",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
