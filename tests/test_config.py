"""Recipe schema: valid recipes load, bad fields are named, overrides are parsed safely."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from visionkit.config import (
    RecipeError,
    apply_overrides,
    load_recipe,
    parse_recipe,
    smoke_recipe,
)

MINIMAL = {"name": "t", "data": {"source": "digits"}, "model": {"name": "simple_cnn"}}


def _with(**sections):
    raw = yaml.safe_load(yaml.safe_dump(MINIMAL))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return raw


def test_every_shipped_recipe_validates(repo_root):
    paths = sorted(glob.glob(os.path.join(repo_root, "pipelines", "*.yaml")))
    assert paths, "pipelines/ holds recipes"
    for path in paths:
        recipe = load_recipe(path)
        assert recipe.name == os.path.splitext(os.path.basename(path))[0]


def test_defaults_fill_in():
    recipe = parse_recipe(MINIMAL)
    # epochs, learning rate and schedule left unset: fit takes the task's defaults
    assert recipe.train.epochs is None and recipe.train.schedule is None
    assert recipe.export.enabled
    assert recipe.run_dir == os.path.join("runs", "t")
    assert recipe.export_dir == os.path.join("saved_models", "t")


@pytest.mark.parametrize("raw, fragments", [
    (_with(trian={"epochs": 3}), ["trian", "Did you mean 'train'"]),
    (_with(train={"epoch": 3}), ["train.epoch", "Did you mean 'epochs'"]),
    (_with(data={"image_sise": [32, 32]}), ["data.image_sise", "image_size"]),
    (_with(train={"epochs": "ten"}), ["train.epochs", "'ten'"]),
    (_with(train={"epochs": 0}), ["train.epochs", "greater than or equal to 1"]),
    (_with(data={"image_size": [32]}), ["data.image_size"]),
    (_with(data={"source": "mnist"}), ["data", "mnist"]),
    (_with(data={"augment": "heavy"}), ["data.augment", "heavy"]),
    (_with(model={"name": "resnet81"}), ["resnet81", "resnet18"]),
    (_with(train={"optimizer": "adamm"}), ["train.optimizer", "adamm"]),
    ({"data": {"source": "digits"}, "model": {"name": "simple_cnn"}}, ["name", "missing"]),
])
def test_bad_fields_are_named(raw, fragments):
    with pytest.raises(RecipeError) as caught:
        parse_recipe(raw, source="test.yaml")
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_image_folder_needs_a_path_and_digits_refuses_one():
    with pytest.raises(RecipeError, match="data.path"):
        parse_recipe(_with(data={"source": "image_folder"}))
    with pytest.raises(RecipeError, match="data.path: unknown field"):
        parse_recipe(_with(data={"source": "digits", "path": "x/"}))


def test_overrides_are_parsed_as_yaml_scalars_never_code():
    raw = apply_overrides(MINIMAL, ["train.epochs=3", "data.image_size=[16, 24]",
                                    "train.run_dir=null", "name=__import__('os')"])
    assert raw["train"]["epochs"] == 3
    assert raw["data"]["image_size"] == [16, 24]
    assert raw["train"]["run_dir"] is None
    assert raw["name"] == "__import__('os')"
    assert MINIMAL.get("train") is None, "the input is not modified"
    with pytest.raises(RecipeError, match="key=value"):
        apply_overrides(MINIMAL, ["train.epochs"])


def test_load_recipe_errors_name_the_file(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="broken.yaml"):
        load_recipe(broken)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(unsafe)


def test_smoke_shrinks_a_recipe():
    recipe = parse_recipe(_with(train={"epochs": 50}, data={"image_size": [224, 160]}))
    smoke = smoke_recipe(recipe)
    assert smoke.train.epochs == 1 and smoke.train.steps_per_epoch == 2
    assert smoke.data.image_size == (64, 64)
    assert smoke.limit == (64, 32)
    assert recipe.train.epochs == 50, "the original recipe is unchanged"


@pytest.mark.parametrize("source, expected", [
    ("imagefolder", r"data\.source: Unknown data source 'imagefolder'\. "
                    r"Did you mean 'image_folder'"),
    ("ImageFolder", r"Unknown data source 'ImageFolder'\. Did you mean 'image_folder'"),
    (None, r"data\.source: Unknown data source None\.( Did you mean [^?]*\?)? Known data "
           r"sources: coco, digits, image_folder, mask_folder, shapes, voc, yolo\."),
])
def test_an_unknown_data_source_gets_the_registry_error(source, expected):
    with pytest.raises(RecipeError, match=expected):
        parse_recipe(_with(data={"source": source, "path": "x"}))



@pytest.mark.parametrize("task, model, given, expected", [
    ("segmentation", "unet", None, 4),  # the task's row, as vk.data.shapes batches
    ("classification", "simple_cnn", None, 32),
    ("segmentation", "unet", 32, 32),  # the user's own is kept
    ("segmentation", "unet", 1, 1),
])
def test_a_recipe_without_a_batch_size_takes_the_tasks(task, model, given, expected):
    from visionkit.vocabulary import get_task

    data = {"source": "shapes"} | ({} if given is None else {"batch_size": given})
    recipe = parse_recipe({"name": "t", "task": task, "data": data, "model": {"name": model}})
    assert recipe.data.batch_size == expected
    if given is None:
        assert expected == get_task(task).batch_size
