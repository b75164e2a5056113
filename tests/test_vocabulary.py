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

    with pytest.raises(ValueError, match=r"already registered \(Classification\)"):
        vocabulary.register_task(Impostor)
    assert vocabulary.TASKS["classification"] is Classification


def test_registry_registers_looks_up_and_names_unknown_entries():
    table = vocabulary.Registry("widget", entries={"alpha": 1})
    assert table.register("beta", 2) == 2

    @table.register("gamma")
    def gamma():
        return 3

    assert table.lookup("gamma") is gamma and table["alpha"] == 1
    assert sorted(table) == ["alpha", "beta", "gamma"] and len(table) == 3
    assert table.names(lambda value: value == 2) == ["beta"]
    with pytest.raises(ValueError, match=r"^Unknown widget 'alpah'\. Did you mean 'alpha'\? "
                                         r"Known widgets: alpha, beta, gamma\.$"):
        table.lookup("alpah")
    with pytest.raises(ValueError, match=r"Unknown widget 3\."):
        table.lookup(3)  # not a name at all
    with pytest.raises(ValueError, match=r"widget named 'beta' is already registered \(int\)"):
        table.register("beta", 5)
    table.register("beta", 5, replace=True)
    assert table.pop("beta") == 5 and "beta" not in table
    table.restore({"delta": 4})
    assert dict(table) == {"delta": 4}
    with pytest.raises(ValueError, match="Unknown widget 'beta'"):
        table.pop("beta")


def test_every_name_table_is_a_registry_with_the_one_lookup_error():
    from visionkit import config, run
    from visionkit.models import pretrained, registry
    from visionkit.models.backbones import factory

    for table, kind in [(vocabulary.TASKS, "task"), (registry._REGISTRY, "model"),
                        (factory._BACKBONES, "backbone"), (pretrained._REGISTRY,
                                                           "pretrained weights"),
                        (run.DATA_SOURCES, "data source"), (config._DATA_SOURCES,
                                                             "data source")]:
        assert isinstance(table, vocabulary.Registry) and len(table) > 0
        with pytest.raises(ValueError, match=f"^Unknown {kind} 'no such name'"):
            table.lookup("no such name")
    # The recipe schema and the recipe runner know the same data sources.
    assert sorted(run.DATA_SOURCES) == sorted(config._DATA_SOURCES)


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


@pytest.mark.parametrize("name, error", [(3, TypeError), (None, TypeError),
                                         (("a",), TypeError), ("", ValueError),
                                         ("  ", ValueError)])
def test_registry_refuses_names_that_are_not_strings_or_are_empty(name, error):
    # A non-string name used to be stored: `names()` then failed on sorting and
    # `lookup(3)` called the registered entry unknown.
    table = vocabulary.Registry("widget", entries={"alpha": 1})
    with pytest.raises(error, match=r"widget name must"):
        table.register(name, 2)
    assert table.names() == ["alpha"]


def test_registry_indexed_as_a_dict_names_the_unknown_entry():
    table = vocabulary.Registry("widget", entries={"alpha": 1})
    with pytest.raises(KeyError) as caught:
        table["alpah"]
    assert str(caught.value) == ("Unknown widget 'alpah'. Did you mean 'alpha'? "
                                 "Known widgets: alpha.")
    assert table.get("alpah") is None and "alpah" not in table and 3 not in table
    assert table.get("alpha") == 1 and "alpha" in table


def test_registry_takes_a_redefinition_of_the_same_function_but_not_another():
    # A notebook cell or importlib.reload runs the decorator again with a new function
    # object of the same module and qualified name: that replaces the entry.
    table = vocabulary.Registry("widget")
    namespace: dict = {}
    source = "def build():\n    return {value}\n"
    exec(source.format(value=1), namespace)
    table.register("w", namespace["build"])
    exec(source.format(value=2), namespace)
    table.register("w", namespace["build"])
    assert table.lookup("w")() == 2

    def other():
        return 3

    with pytest.raises(ValueError, match=r"widget named 'w' is already registered"):
        table.register("w", other)
    assert table.lookup("w")() == 2


def test_a_model_builder_registered_again_by_a_rerun_cell_replaces_its_entry():
    from visionkit.models import registry

    saved = dict(registry._REGISTRY)
    source = ("@register('brk_rerun', task='classification')\n"
              "def brk_rerun(input_shape, num_classes):\n    return {value}\n")
    namespace: dict = {"register": registry.register}
    try:
        exec(source.format(value=1), namespace)
        exec(source.format(value=2), namespace)  # the cell run again: no error
        assert registry.get("brk_rerun").builder(None, None) == 2
        with pytest.raises(ValueError, match=r"model named 'brk_rerun' is already registered"):
            registry.register("brk_rerun", task="classification")(lambda *args: 3)
        with pytest.raises(ValueError, match=r"model named 'resnet18' is already registered "
                                             r"\(visionkit\.models\."):
            exec(source.replace("brk_rerun'", "resnet18'").format(value=4), namespace)
        with pytest.raises(TypeError, match="model name must be a string"):
            registry.register(7, task="classification")(lambda *args: 5)
    finally:
        registry._REGISTRY.restore(saved)
