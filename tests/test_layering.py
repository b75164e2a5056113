"""The package graph: no cycles, no upward imports, and the documented diagram is current."""

import ast
import importlib.util
import re
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
    assert users == []
    # Keras's private names visionkit reads (tests/test_keras_internals.py checks each
    # against the installed Keras) appear in visionkit/keras_internals.py only.
    names = ("_keras_history", "_flatten_layers", "_nodes_by_depth", "_run_through_graph",
             "_functional", "_seed_generators", "_current_epoch", "_last_batch_seen",
             "_training_metadata_path", "_in_multi_worker_mode", "_symbolic_build",
             "_distribute_strategy", "_initial_epoch", "_get_metrics_result_or_logs")
    private = sorted({str(path.relative_to(ROOT))
                      for path in (ROOT / "visionkit").rglob("*.py") for name in names
                      if re.search(rf"[.\"']{name}\b", path.read_text())})
    assert private == ["visionkit/keras_internals.py"]


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


def _task_names() -> set[str]:
    """The `name = "..."` of every task class under visionkit/tasks/, read from the source."""
    names = set()
    for path in (ROOT / "visionkit" / "tasks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                            and getattr(statement.targets[0], "id", None) == "name"
                            and isinstance(statement.value, ast.Constant)):
                        names.add(statement.value.value)
    return names


def _task_name_branches(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, code) of each place `source` decides by a task's name: a comparison with a
    name (`==`, `!=`, `in`, `not in`, against a literal or a literal collection), a
    dict keyed by names, or a collection of names bound to a variable."""

    def is_name(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in names

    def holds_names(node: ast.AST) -> bool:
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(
            is_name(element) for element in node.elts)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            hit = any(is_name(side) or holds_names(side)
                      for side in [node.left, *node.comparators])
        elif isinstance(node, ast.Dict):
            hit = any(key is not None and is_name(key) for key in node.keys)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            hit = node.value is not None and holds_names(node.value)
        elif isinstance(node, ast.MatchValue):
            hit = is_name(node.value)
        else:
            hit = False
        if hit:
            found.append((node.lineno, ast.unparse(node).splitlines()[0][:100]))
    return sorted(found)


def test_no_task_name_comparisons_outside_the_task_objects():
    """DESIGN.md's principle 3: code asks the task (its attributes and methods), never
    branches on its name; only the task objects in visionkit/tasks/ know their names."""
    names = _task_names()
    assert {"classification", "segmentation", "detection", "multilabel", "embedding"} <= names
    found = []
    for path in sorted((ROOT / "visionkit").rglob("*.py")):
        if path.relative_to(ROOT).parts[1] == "tasks":
            continue
        found += [(str(path.relative_to(ROOT)), line, code)
                  for line, code in _task_name_branches(path.read_text(), names)]
    assert found == []


def test_the_task_name_scanner_sees_each_kind_of_branch():
    """The scanner itself, on hand-made code (a scanner that saw nothing would let the
    test above pass)."""
    names = {"classification", "detection"}
    source = (
        'if task == "detection":\n    pass\n'                  # 1: comparison
        'if "classification" != task.name:\n    pass\n'        # 3: reversed
        'ok = task.name in ("classification", "other")\n'      # 5: membership in a literal
        'TABLE = {"detection": 1}\n'                           # 6: dict keyed by names
        'KNOWN = ("classification", "detection")\n'            # 7: a collection of names
        'match task:\n    case "detection":\n        pass\n'   # 9: a match case
        'build("unet", task="detection")\n'                    # a keyword: not a branch
        'if kind == "coco":\n    pass\n')                       # another word: not a task
    assert [line for line, _ in _task_name_branches(source, names)] == [1, 3, 5, 6, 7, 9]
