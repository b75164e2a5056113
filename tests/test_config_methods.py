"""Recipe sections for distillation (`distill:`) and adversarial training."""

from __future__ import annotations

import pytest

from visionkit.config import RecipeError, parse_recipe, smoke_recipe

BASE = {"name": "r", "data": {"source": "digits"}, "model": {"name": "simple_cnn"}}


def test_a_distill_section_is_validated_and_smoke_trains_the_teacher_one_epoch():
    recipe = parse_recipe({**BASE, "distill": {"teacher": {"name": "simple_cnn", "epochs": 9},
                                               "temperature": 3, "alpha": 0.2,
                                               "features": [{"teacher": "conv1",
                                                             "student": "conv1"}]}})
    assert recipe.distill.temperature == 3.0 and recipe.distill.features[0].loss == "mse"
    assert smoke_recipe(recipe).distill.teacher.epochs == 1


@pytest.mark.parametrize("distill,message", [
    ({"teacher": {}}, "either a model name"),
    ({"teacher": {"name": "simple_cnn", "checkpoint": "t.keras"}}, "either a model name"),
    ({"teacher": {"name": "simple_cn"}}, "simple_cnn"),
    ({"teacher": {"checkpoint": "t.keras"}, "alpha": 2}, "distill.alpha"),
    ({"teacher": {"checkpoint": "t.keras"}, "temprature": 2}, "temperature"),
])
def test_bad_distill_sections_are_named(distill, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe({**BASE, "distill": distill})


def test_train_adversarial_is_validated():
    recipe = parse_recipe({**BASE, "train": {"adversarial": {"epsilon": 8, "steps": 7}}})
    assert recipe.train.adversarial.model_dump(exclude_none=True) == {
        "method": "pgd", "epsilon": 8.0, "steps": 7, "norm": "inf"}
    with pytest.raises(RecipeError, match="train.adversarial.epsilon"):
        parse_recipe({**BASE, "train": {"adversarial": {"epsilon": 300}}})
    with pytest.raises(RecipeError, match="train.adversarial.norm"):
        parse_recipe({**BASE, "train": {"adversarial": {"norm": "1"}}})
