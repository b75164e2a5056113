"""The recipe's `train:` section is fit's signature: same options, same defaults, all passed."""

import inspect

import pytest

from visionkit import config, run
from visionkit.config import RecipeError, parse_recipe
from visionkit.train.fit import Run, fit
from visionkit.train.options import RECIPE_TYPES, SET_ELSEWHERE, TrainConfig


def test_every_fit_option_is_in_the_recipe_schema_or_named_as_set_elsewhere():
    fit_options = set(inspect.signature(fit).parameters)
    in_schema = set(TrainConfig.model_fields)
    # A new fit option fails here until the recipe knows it (RECIPE_TYPES) or says where
    # a recipe sets it instead (SET_ELSEWHERE).
    assert fit_options - in_schema - set(SET_ELSEWHERE) == set()
    # ... and the schema has no option fit does not take, nor one listed twice.
    assert in_schema - fit_options == set()
    assert set(RECIPE_TYPES) - fit_options == set()
    assert in_schema & set(SET_ELSEWHERE) == set()
    assert config.TrainConfig is TrainConfig  # the recipe schema's own section


def test_the_schema_defaults_are_fits_defaults():
    parameters = inspect.signature(fit).parameters
    defaults = {name: field.default for name, field in TrainConfig.model_fields.items()}
    assert defaults == {name: parameters[name].default for name in defaults}


# A value other than fit's default for every option (a new option must be added here).
NON_DEFAULT = {
    "epochs": 3, "run_dir": "runs/options", "optimizer": "sgd", "learning_rate": 0.01,
    "schedule": "constant", "warmup_epochs": 0.5, "momentum": 0.8, "nesterov": True,
    "weight_decay": 1e-4, "early_stopping": 2, "checkpoint": False, "tensorboard": False,
    "backup": False, "mixed_precision": "float32", "jit_compile": False, "strategy": None,
    "scale_learning_rate": False, "global_batch_size": 64,
    "data_service": "grpc://localhost:5050", "steps_per_epoch": 2, "validation_steps": 1,
    "verbose": 0, "evaluate": False, "plots": False, "fine_tune": {"freeze_epochs": 1},
    "restore_best": False, "precise_bn": 256, "class_weight": [1.0, 2.0],
    "sampling": "balanced",
    "explain_every": 2, "adversarial": {"epsilon": 4.0},
}


def test_the_runner_passes_every_train_option_to_fit_under_its_name(monkeypatch):
    assert set(NON_DEFAULT) == set(TrainConfig.model_fields)
    captured = {}

    def fake_fit(model, data, **options):
        captured.update(options)
        return Run(model=model, history={}, metrics={})

    monkeypatch.setattr(run.vk_train, "fit", fake_fit)
    recipe = parse_recipe({"name": "options", "seed": 7,
                           "data": {"source": "digits", "image_size": [8, 8]},
                           "model": {"name": "simple_cnn", "args": {"filters": [4]}},
                           "train": NON_DEFAULT, "export": {"enabled": False}})
    run.run_recipe(recipe, run_dir="runs/elsewhere")
    expected = {**NON_DEFAULT, "run_dir": "runs/elsewhere",  # the caller's run_dir wins
                "fine_tune": {"freeze_epochs": 1, "unfreeze": "all", "k": None,
                              "learning_rate_factor": 0.1},
                "adversarial": {"method": "pgd", "epsilon": 4.0, "norm": "inf"}}
    assert {name: captured[name] for name in expected} == expected
    assert captured["seed"] == 7 and captured["augment"] == "auto"
    assert set(captured) <= set(inspect.signature(fit).parameters)


@pytest.mark.parametrize("train, message", [
    ({"class_weight": "balance"}, r"train\.class_weight"),
    ({"sampling": "uniform"}, r"train\.sampling"),
    ({"explain_every": 0}, r"train\.explain_every"),
    ({"restore_bets": False}, r"train\.restore_bets: unknown field\. Did you mean "
                              r"'restore_best'"),
])
def test_the_new_train_options_are_validated(train, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe({"name": "t", "data": {"source": "digits"},
                      "model": {"name": "simple_cnn"}, "train": train})


@pytest.fixture
def sensor_source():
    """A data source a user registers: its own schema field and loader."""
    class SensorData(config.DataSection):
        source: str
        gain: float = 1.0

    loaded = []

    def load(section, task, common):
        loaded.append((section.gain, task, common["image_size"]))
        return run.vk_data.digits(**common)

    run.register_data_source("sensor", SensorData, load)
    yield loaded
    config.DATA_SOURCE_SCHEMAS.pop("sensor")
    run.DATA_SOURCES.pop("sensor")


def test_a_registered_data_source_is_accepted_by_a_recipe(sensor_source):
    raw = {"name": "s", "data": {"source": "sensor", "gain": 2.5, "image_size": [8, 8]},
           "model": {"name": "simple_cnn"}}
    recipe = parse_recipe(raw)
    assert type(recipe.data).__name__ == "SensorData" and recipe.data.gain == 2.5
    data = run.data_from_recipe(recipe)
    assert sensor_source == [(2.5, "classification", (8, 8))] and data.image_size == (8, 8)
    # Its section is as strict as the built-in ones.
    with pytest.raises(RecipeError, match=r"data\.gian: unknown field\. Did you mean 'gain'"):
        parse_recipe({**raw, "data": {"source": "sensor", "gian": 2.5}})


def test_an_unregistered_source_is_unknown_and_registration_is_checked():
    with pytest.raises(RecipeError, match=r"data\.source: Unknown data source 'sensor'"):
        parse_recipe({"name": "s", "data": {"source": "sensor"},
                      "model": {"name": "simple_cnn"}})
    with pytest.raises(TypeError, match="subclass of visionkit.config.DataSection"):
        run.register_data_source("sensor", dict, lambda *args: None)
    class Other(config.DataSection):
        source: str

    with pytest.raises(ValueError, match="already registered"):
        run.register_data_source("digits", Other, lambda *args: None)
    # The built-in schema passed again with another loader: the loader's name is taken,
    # and the built-in source is left whole.
    with pytest.raises(ValueError, match="already registered"):
        run.register_data_source("digits", config.DigitsData, lambda *args: None)
    assert config.DATA_SOURCE_SCHEMAS["digits"] is config.DigitsData
    assert "sensor" not in config.DATA_SOURCE_SCHEMAS and "sensor" not in run.DATA_SOURCES


def test_a_schema_without_source_fails_at_registration_not_in_every_recipe():
    class NoSource(config.DataSection):
        gain: float = 1.0

    with pytest.raises(TypeError, match=r"'sensor' \(NoSource\) needs a `source` field"):
        run.register_data_source("sensor", NoSource, lambda *args: None)
    assert "sensor" not in config.DATA_SOURCE_SCHEMAS and "sensor" not in run.DATA_SOURCES


def test_a_loader_that_returns_no_data_set_fails_naming_the_source():
    class Wrong(config.DataSection):
        source: str

    run.register_data_source("wrong", Wrong, lambda section, task, common: (None, None))
    try:
        recipe = parse_recipe({"name": "w", "data": {"source": "wrong"},
                               "model": {"name": "simple_cnn"}, "limit": [4, 4]})
        with pytest.raises(TypeError, match="data source 'wrong' returned tuple; expected "
                                            "a visionkit Data set"):
            run.data_from_recipe(recipe)
    finally:
        config.DATA_SOURCE_SCHEMAS.pop("wrong"), run.DATA_SOURCES.pop("wrong")


def test_replace_shadows_a_built_in_source_as_the_taken_name_message_says():
    original = config.DATA_SOURCE_SCHEMAS["digits"], run.DATA_SOURCES["digits"]

    class MyDigits(config.DataSection):
        source: str
        scale: float = 1.0

    def load(section, task, common):
        return run.vk_data.digits(**common)

    with pytest.raises(ValueError, match="pass replace=True"):
        run.register_data_source("digits", MyDigits, load)
    run.register_data_source("digits", MyDigits, load, replace=True)
    try:
        recipe = parse_recipe({"name": "d", "data": {"source": "digits", "scale": 2.0},
                               "model": {"name": "simple_cnn"}})
        assert type(recipe.data) is MyDigits and run.DATA_SOURCES["digits"] is load
    finally:
        config.DATA_SOURCE_SCHEMAS.register("digits", original[0], replace=True)
        run.DATA_SOURCES.register("digits", original[1], replace=True)


@pytest.mark.parametrize("train, field", [
    ({"early_stopping": True}, "early_stopping"),  # not patience 1
    ({"epochs": True}, "epochs"),
    ({"explain_every": True}, "explain_every"),
    ({"steps_per_epoch": False}, "steps_per_epoch"),
    ({"fine_tune": {"freeze_epochs": True}}, "fine_tune.freeze_epochs"),
])
def test_a_count_written_as_a_yaml_boolean_fails_instead_of_reading_as_1(train, field):
    with pytest.raises(RecipeError, match=rf"train\.{field}: .*not the boolean"):
        parse_recipe({"name": "t", "data": {"source": "digits"},
                      "model": {"name": "simple_cnn"}, "train": train})


@pytest.mark.parametrize("train, field", [
    ({"learning_rate": float("inf")}, "learning_rate"),  # YAML `.inf`
    ({"warmup_epochs": float("inf")}, "warmup_epochs"),
    ({"class_weight": [1.0, float("inf")]}, "class_weight"),
    ({"adversarial": {"epsilon": float("nan")}}, "adversarial.epsilon"),
])
def test_yaml_infinities_and_nans_are_rejected_in_train(train, field):
    with pytest.raises(RecipeError, match=rf"train\.{field}"):
        parse_recipe({"name": "t", "data": {"source": "digits"},
                      "model": {"name": "simple_cnn"}, "train": train})


def test_numbers_written_as_yaml_strings_still_read_as_numbers():
    # YAML 1.1 reads `1e-3` (no dot) as a string.
    recipe = parse_recipe({"name": "t", "data": {"source": "digits"},
                           "model": {"name": "simple_cnn"},
                           "train": {"learning_rate": "1e-3", "epochs": "3"}})
    assert recipe.train.learning_rate == 0.001 and recipe.train.epochs == 3


@pytest.mark.parametrize("raw, message", [
    ({"train": {"batch_size": 8}},  # not "did you mean global_batch_size"
     r"train\.batch_size: unknown field\. It belongs in the data section \(data\.batch_size\)"),
    ({"train": {"augment": "light"}}, r"train\.augment: .* the data section \(data\.augment\)"),
    ({"train": {"seed": 3}}, r"train\.seed: .* at the top level of the recipe \(seed\)"),
    ({"epochs": 3}, r"  epochs: unknown field\. It belongs in the train section \(train\.epochs\)"),
    ({"model": {"name": "simple_cnn", "learning_rate": 0.1}},
     r"model\.learning_rate: .* the train section \(train\.learning_rate\)"),
    ({"train": {"loss": "triplet"}}, r"train\.loss: .* metric_learning section"),
])
def test_an_option_in_the_wrong_section_names_its_section(raw, message):
    recipe = {"name": "t", "data": {"source": "digits"}, "model": {"name": "simple_cnn"},
              **raw}
    with pytest.raises(RecipeError, match=message):
        parse_recipe(recipe)


def test_a_section_whose_options_are_all_commented_out_takes_its_defaults():
    import yaml

    text = """
name: t
data: {source: digits}
model: {name: simple_cnn}
train:
  # epochs: 3
export:
"""
    recipe = parse_recipe(yaml.safe_load(text))
    assert recipe.train == TrainConfig() and recipe.export == type(recipe.export)()
    with pytest.raises(RecipeError, match=r"  data: "):  # data has no defaults
        parse_recipe({"name": "t", "data": None, "model": {"name": "simple_cnn"}})


def test_class_weight_by_class_name_is_accepted_as_fit_accepts_it():
    from visionkit.train.balance import resolve_class_weights

    recipe = parse_recipe({"name": "t", "data": {"source": "digits"},
                           "model": {"name": "simple_cnn"},
                           "train": {"class_weight": {"cat": 2.0, 1: 0.5, "2": 3.0}}})
    weights = recipe.train.fit_arguments()["class_weight"]
    assert weights == {"cat": 2.0, 1: 0.5, 2: 3.0}  # "2" (JSON keys) is class id 2
    assert resolve_class_weights(weights, None, ["cat", "dog", "bird"]).tolist() == \
        [2.0, 0.5, 3.0]


@pytest.mark.parametrize("section, field", [
    ({"data": {"source": "digits", "batch_size": True}}, "data.batch_size"),
    ({"interpret": {"images": True}}, "interpret.images"),
])
def test_counts_in_other_sections_refuse_yaml_booleans_too(section, field):
    with pytest.raises(RecipeError, match=rf"{field}: .*not the boolean"):
        parse_recipe({"name": "t", "data": {"source": "digits"},
                      "model": {"name": "simple_cnn"}, **section})


def test_an_empty_augment_means_none_as_augment_none_does_in_python():
    recipe = parse_recipe({"name": "t", "data": {"source": "digits", "augment": None},
                           "model": {"name": "simple_cnn"}})
    assert recipe.data.augment == "none"
