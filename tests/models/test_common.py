"""The checks every builder shares (models.common)."""

import pytest

import visionkit as vk


@pytest.mark.parametrize("name", ["resnet18", "squeezenet", "vgg11", "mobilenet_v2"])
@pytest.mark.parametrize("num_classes", [0, 2.5, True, "3"])
def test_a_bad_num_classes_is_named_by_direct_calls_and_build(name, num_classes):
    builder = vk.models.get(name).builder
    message = rf"Expected num_classes as an integer >= 1; received num_classes={num_classes!r}"
    with pytest.raises(ValueError, match=message):
        builder((32, 32, 3), num_classes)
    with pytest.raises(ValueError, match=message):  # build no longer truncates 2.5 to 2
        vk.models.build(name, (32, 32, 3), num_classes)


@pytest.mark.parametrize("name", ["resnet18", "squeezenet", "mobilenet_v2"])
def test_one_class_under_a_softmax_is_refused_at_build_time(name):
    # A softmax over one unit is always 1.0: the model could never say anything.
    with pytest.raises(ValueError, match=r"num_classes=1 with activation='softmax'.*"
                                         r"activation='sigmoid'"):
        vk.models.get(name).builder((32, 32, 1), 1)


def test_one_class_with_a_sigmoid_or_logits_builds():
    builder = vk.models.get("squeezenet").builder
    for activation in ("sigmoid", None):
        model = builder((32, 32, 1), 1, width_multiplier=0.25, activation=activation)
        assert model.output_shape == (None, 1)
