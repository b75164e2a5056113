"""Recipes take `train.fine_tune` with the keys of `fit(..., fine_tune=...)`."""

from __future__ import annotations

import pytest

from visionkit.config import RecipeError, parse_recipe, smoke_recipe
from visionkit.train.fine_tune import parse_fine_tune

BASE = {"name": "t", "data": {"source": "digits"},
        "model": {"name": "mobilenet_v2", "args": {"weights": "imagenet"}}}


def recipe(fine_tune: dict, epochs: int = 5):
    return parse_recipe({**BASE, "train": {"epochs": epochs, "fine_tune": fine_tune}})


def test_fine_tune_section_has_fit_s_keys_and_defaults():
    parsed = recipe({"freeze_epochs": 2, "unfreeze": "last_k_blocks", "k": 2})
    keys = parsed.train.fine_tune.model_dump()
    assert keys == {"freeze_epochs": 2, "unfreeze": "last_k_blocks", "k": 2,
                    "learning_rate_factor": 0.1}
    plan = parse_fine_tune(keys, parsed.train.epochs)  # what run_recipe hands to fit
    assert (plan.freeze_epochs, plan.k, plan.learning_rate_factor) == (2, 2, 0.1)


@pytest.mark.parametrize(("fine_tune", "field"), [
    ({"freeze_epochs": 1, "unfreez": "all"}, "unfreez"),
    ({"freeze_epochs": 0}, "freeze_epochs"),
    ({"freeze_epochs": 1, "unfreeze": "half"}, "unfreeze"),
    ({"freeze_epochs": 1, "learning_rate_factor": 2}, "learning_rate_factor"),
    ({"freeze_epochs": 1, "unfreeze": "last_k_blocks"}, r"k \(stages to unfreeze\)"),
    ({"freeze_epochs": 1, "k": 2}, r"k \(stages to unfreeze\)"),
    ({"freeze_epochs": 6}, r"freeze_epochs=6 is more than epochs=5"),
])
def test_bad_fine_tune_fields_are_named(fine_tune, field):
    with pytest.raises(RecipeError, match=field):
        recipe(fine_tune)


def test_smoke_mode_keeps_both_phases():
    smoke = smoke_recipe(recipe({"freeze_epochs": 3}))
    assert smoke.train.epochs == 2 and smoke.train.fine_tune.freeze_epochs == 1


def test_fine_tune_without_train_epochs_is_checked_at_fit_not_a_type_error():
    """No `train.epochs` (the task's default applies) used to fail with a TypeError."""
    parsed = parse_recipe({**BASE, "train": {"fine_tune": {"freeze_epochs": 2}}})
    assert parsed.train.epochs is None and parsed.train.fine_tune.freeze_epochs == 2
    with pytest.raises(ValueError, match=r"freeze_epochs.*1 to epochs=1"):
        parse_fine_tune(parsed.train.fine_tune.model_dump(), 1)
