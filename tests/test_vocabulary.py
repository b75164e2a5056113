"""The shared vocabulary: the task table, "did you mean" and the conventions."""

import pytest

import visionkit  # noqa: F401  (registers the concrete tasks)
from visionkit import vocabulary
from visionkit.data import boxes, masks
from visionkit.tasks import Classification, MultiLabelClassification, Segmentation
from visionkit.train import losses


def test_get_task_builds_the_registered_class_with_options():
    task = vocabulary.get_task("multilabel", threshold=0.3)
    assert isinstance(task, MultiLabelClassification) and task.threshold == 0.3
    assert isinstance(vocabulary.get_task("segmentation"), Segmentation)
    given = Classification()
    assert vocabulary.get_task(given) is given


def test_get_task_refuses_options_with_an_object_and_names_unknown_tasks():
    with pytest.raises(ValueError, match="need a task name"):
        vocabulary.get_task(Classification(), threshold=0.5)
    with pytest.raises(ValueError, match=r"'segmentaton'\. Did you mean 'segmentation'\?"):
        vocabulary.get_task("segmentaton")


def test_register_task_refuses_a_second_class_under_a_taken_name():
    class Impostor(vocabulary.Task):
        name = "classification"

    with pytest.raises(ValueError, match="taken by Classification"):
        vocabulary.register_task(Impostor)
    assert vocabulary.TASKS["classification"] is Classification


@pytest.mark.parametrize("name, known, n, expected", [
    ("unet", ["unet", "segnet"], 1, " Did you mean 'unet'?"),
    ("resnet5", ["resnet50", "resnet18", "vgg16"], 2, " Did you mean 'resnet50', 'resnet18'?"),
    ("zzz", ["unet"], 3, ""),
])
def test_did_you_mean(name, known, n, expected):
    assert vocabulary.did_you_mean(name, known, n=n) == expected


def test_conventions_have_one_definition():
    assert losses.IGNORE_INDEX is vocabulary.IGNORE_INDEX == masks.IGNORE_INDEX == 255
    assert boxes.PAD_VALUE == vocabulary.BOX_PADDING == -1
    assert Classification.target_key == vocabulary.LABELS
    assert Segmentation.target_key == vocabulary.SEGMENTATION_MASKS
