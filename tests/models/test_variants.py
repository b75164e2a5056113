"""Builders made by `variant` and the `classifier` decorator behave as hand-written defs:
their signature, defaults, errors, module, doctest and pickling are a `def`'s."""

from __future__ import annotations

import doctest
import inspect
import pickle

import pytest

import visionkit as vk
from visionkit.models.classification.backbone_head import classifier
from visionkit.models.variants import compile_builder, variant

# The builders that are variants of one family builder, or wiring functions under the
# `classifier` decorator.
GENERATED = ["resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "mobilenet_v2",
             "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1",
             "densenet121", "resnet50_v2", "alexnet", "zfnet", "squeezenet", "inception_mini",
             "googlenet", "wide_resnet"]


def _wire(input_shape=(32, 32, 3), num_classes=10, name="", *, depth, **options):
    return {"input_shape": input_shape, "num_classes": num_classes, "name": name,
            "depth": depth, **options}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_builders_look_hand_written(name):
    builder = vk.models.get(name).builder
    signature = inspect.signature(builder)
    assert builder.__name__ == builder.__qualname__ == name
    assert signature.parameters["name"].default == name
    assert list(signature.parameters)[:2] == ["input_shape", "num_classes"]
    assert signature.return_annotation == "keras.Model"
    # Its own module, by name: pickle and doctest find it there.
    module = inspect.getmodule(builder)
    assert getattr(module, name) is builder
    assert builder.__globals__ is vars(module)
    assert pickle.loads(pickle.dumps(builder)) is builder
    assert "{" not in builder.__doc__.replace("{\"", "").replace("{'", "")
    tests = [test.name for test in doctest.DocTestFinder().find(module) if test.examples]
    assert f"{module.__name__}.{name}" in tests


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "zfnet"])
def test_wrong_arguments_fail_as_for_a_def(name):
    builder = vk.models.get(name).builder
    with pytest.raises(TypeError, match=rf"{builder.__name__}\(\) got an unexpected keyword "
                                        r"argument 'depth_multiplier'"):
        builder(depth_multiplier=2)
    with pytest.raises(TypeError, match="multiple values for argument 'input_shape'"):
        builder((32, 32, 3), input_shape=(32, 32, 3))


def test_variant_binds_fixed_arguments_and_keeps_the_rest():
    tiny = variant(_wire, "tiny7", "Tiny-{depth}: {blurb}\n\n    {args}", {"blurb": "small"},
                   depth=7)
    assert str(inspect.signature(tiny)) == (
        "(input_shape=(32, 32, 3), num_classes=10, name='tiny7', **options)")
    # `{args}` is left for fill_docstring; the fixed values and fields are formatted in.
    assert tiny.__doc__ == "Tiny-7: small\n\n    {args}"
    assert tiny((8, 8, 1), 3, extra=1) == {"input_shape": (8, 8, 1), "num_classes": 3,
                                          "name": "tiny7", "depth": 7, "extra": 1}
    assert tiny.__defaults__ == ((32, 32, 3), 10, "tiny7")
    with pytest.raises(TypeError, match="takes no"):
        variant(_wire, "bad", "", width=2)


def test_compile_builder_refuses_positional_only_parameters():
    positional = inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY)
    with pytest.raises(TypeError, match="positional-only"):
        compile_builder("f", [positional], print, {})


def test_classifier_adds_the_standard_arguments_around_the_wiring_ones():
    def toy(inputs, num_classes, activation, width: float = 1.0, dropout: float = 0.1):
        """Toy.

        Args:
            {image_args}
            width: toy width.
            {output_args}
        """

    builder = classifier(minimum=12, input_shape=(24, 24, 3), num_classes=5)(toy)
    assert list(inspect.signature(builder).parameters) == [
        "input_shape", "num_classes", "width", "dropout", "activation", "weights", "name"]
    assert inspect.signature(builder).parameters["name"].default == "toy"
    doc = inspect.getdoc(builder)
    assert "at least 12x12.\n        Defaults to (24, 24, 3)." in doc
    assert "num_classes: number of classes. Defaults to 5." in doc
    assert doc.rstrip().endswith('name: model name. Defaults to "toy".')


@pytest.mark.parametrize("name", ["unet_resnet18", "unet_vgg16"])
def test_unet_backbone_builders_look_hand_written(name):
    builder = vk.models.get(name).builder
    assert builder.__name__ == builder.__qualname__ == name
    module = inspect.getmodule(builder)
    assert getattr(module, name) is builder
    assert pickle.loads(pickle.dumps(builder)) is builder
    # A misspelled option names the builder called, not the one it wraps.
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument "
                                        r"'decoder_filtres'"):
        builder((32, 32, 3), 2, decoder_filtres=(8,))
    assert "backbone" not in inspect.signature(builder).parameters
    # Its module's doctests are unet_on_backbone's one, not one 64x64 U-Net per backbone.
    assert not [test for test in doctest.DocTestFinder().find(module)
                if test.examples and test.name.endswith(name)]
