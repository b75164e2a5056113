"""The package graph: no cycles, no upward imports, and the documented diagram is current."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
sys.modules["import_graph"] = import_graph
_spec.loader.exec_module(import_graph)


@pytest.fixture(scope="module")
def edges():
    return import_graph.graph()


def test_no_cycle_between_packages(edges):
    assert import_graph.cycles(edges) == []


def test_no_upward_import(edges):
    assert import_graph.upward(edges) == []
    # The issue's own wording: interpret and export are never imported by data, models
    # or train.
    for low in ("data", "models", "train"):
        for high in ("interpret", "export", "tasks"):
            assert (low, high) not in edges, edges.get((low, high))


def test_imports_between_packages_sit_at_module_level(edges):
    deferred = [(a, b, site) for (a, b), sites in edges.items() for site in sites
                if not site[2] and a != "cli"]
    assert deferred == []


def test_every_package_has_a_layer(edges):
    units = {a for a, _ in edges} | {b for _, b in edges}
    assert units <= set(import_graph.LAYERS), units - set(import_graph.LAYERS)


def test_no_keras_internals_outside_the_one_module():
    users = [str(path.relative_to(ROOT)) for path in (ROOT / "visionkit").rglob("*.py")
             if "keras.src" in path.read_text()]
    assert users == ["visionkit/train/keras_compat.py"]


def test_the_documented_diagram_is_the_code(edges):
    documented = import_graph.documented_block((ROOT / "docs" / "architecture.md").read_text())
    assert documented == import_graph.mermaid(edges), (
        "docs/architecture.md is out of date: run python tools/import_graph.py --write")


def test_the_graph_reader_sees_relative_deferred_and_package_imports(tmp_path, monkeypatch):
    """The reader itself, on a hand-made package (a reader that missed imports would let
    every other test here pass)."""
    package = tmp_path / "visionkit"
    (package / "low").mkdir(parents=True)
    (package / "high").mkdir()
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from . import helpers\n")
    (package / "low" / "helpers.py").write_text(
        "def f():\n    from visionkit.high import thing\n    return thing\n")
    (package / "high" / "__init__.py").write_text("from visionkit import low\nthing = 1\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    monkeypatch.setattr(import_graph, "PACKAGE", package)
    found = import_graph.graph()
    assert set(found) == {("low", "high"), ("high", "low")}
    assert [site[2] for site in found[("low", "high")]] == [False]  # deferred
    assert [site[2] for site in found[("high", "low")]] == [True]
    assert import_graph.cycles(found) == [["high", "low"]]
    ast.parse((package / "low" / "helpers.py").read_text())
