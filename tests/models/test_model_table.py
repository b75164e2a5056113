"""The README's model table: one row per registered builder, with its paper, year, input,
classes and parameter count; the counts are those of the built models."""

from __future__ import annotations

import os
import re

import pytest

import visionkit as vk

HEADER = "| Builder | Paper | Year | Input, classes | Parameters |"


def table_rows(repo_root: str) -> dict[str, list[str]]:
    """{builder: [paper, year, input and classes, parameters]} from the README's table."""
    with open(os.path.join(repo_root, "README.md"), encoding="utf-8") as file:
        lines = file.read().splitlines()
    start = lines.index(HEADER) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0])
        assert name, f"the first cell names no builder: {line!r}"
        assert name.group(1) not in rows, f"{name.group(1)} has two rows"
        rows[name.group(1)] = cells[1:]
    return rows


def test_every_registered_builder_has_a_row_with_paper_year_and_count(repo_root):
    rows = table_rows(repo_root)
    assert sorted(rows) == vk.models.available()
    for name, (paper, year, shape, parameters) in rows.items():
        assert paper and paper != "-", name
        assert re.fullmatch(r"(19|20)\d\d", year), (name, year)
        assert re.match(r"\d+x\d+x\d+, \d+$", shape), (name, shape)
        assert re.match(r"\d{1,3}(,\d{3})*", parameters), (name, parameters)


@pytest.mark.slow  # builds every model at its paper's size (ImageNet classifiers at 224)
def test_the_tables_counts_are_the_built_models(repo_root):
    for name, (_, _, shape, parameters) in table_rows(repo_root).items():
        sizes, classes = shape.split(", ")
        input_shape = tuple(int(side) for side in sizes.split("x"))
        if vk.models.get(name).task == "embedding":  # the column gives the embedding size
            model = vk.models.build(name, input_shape, embedding_dim=int(classes))
        else:
            model = vk.models.build(name, input_shape, int(classes))
        first = re.match(r"[\d,]+", parameters).group(0)
        assert first == f"{model.count_params():,}", (name, first, model.count_params())


def test_lenet5s_counts_are_the_built_models_at_every_layer_choice(repo_root):
    # Both layer choices of LeNet-5 (the slow test checks every row's
    # first count): C5's maximum over positions changed LeNet-5's count (was 92,672).
    _, _, shape, parameters = table_rows(repo_root)["lenet5"]
    modern, paper = re.fullmatch(r"([\d,]+) \(batch norm\); `batch_norm=False`: ([\d,]+)",
                                 parameters).groups()
    assert shape == "32x32x3, 10"
    assert modern == f"{vk.models.build('lenet5', (32, 32, 3), 10).count_params():,}"
    assert paper == f"{vk.models.build('lenet5', (32, 32, 3), 10, batch_norm=False).count_params():,}"
