"""help() on every registered builder lists what it takes: its signature names each
option (no bare **kwargs) and its docstring documents each of them under Args."""

from __future__ import annotations

import inspect

import pytest

import visionkit as vk


@pytest.mark.parametrize("name", vk.models.available())
def test_every_registered_builder_documents_each_argument(name):
    builder = vk.models.get(name).builder
    signature = inspect.signature(builder)
    hidden = [p.name for p in signature.parameters.values()
              if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert not hidden, f"{name} hides its options behind {hidden}"
    doc = inspect.getdoc(builder) or ""
    assert "Args:" in doc, name
    args = doc.split("Args:", 1)[1]
    undocumented = [p for p in signature.parameters
                    if f"{p}:" not in args and f"{p}," not in args]
    assert not undocumented, f"{name}: {undocumented} not under Args"


def test_a_unet_on_backbone_builder_takes_the_options_of_unet_on_backbone():
    from visionkit.models.segmentation import unet_on_backbone

    wrapper = inspect.signature(vk.models.get("unet_resnet18").builder)
    general = inspect.signature(unet_on_backbone)
    assert list(wrapper.parameters) == [p for p in general.parameters if p != "backbone"]
    assert [p.default for p in wrapper.parameters.values()] == \
        [p.default for name, p in general.parameters.items() if name != "backbone"]


@pytest.mark.parametrize("name, misspelled, meant", [
    ("resnet18", "num_class", "num_classes"), ("squeezenet", "num_clases", "num_classes"),
    ("unet_resnet18", "decoder_filter", "decoder_filters")])
def test_build_names_a_misspelled_argument_before_asking_for_num_classes(name, misspelled,
                                                                        meant):
    with pytest.raises(TypeError, match=rf"{name}\(\) got an unexpected keyword argument "
                                        rf"'{misspelled}'.*Did you mean '{meant}'"):
        vk.models.build(name, (32, 32, 3), **{misspelled: 3})
