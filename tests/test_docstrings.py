"""Every Example in visionkit's docstrings runs as a doctest and shows what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile

import pytest

import visionkit

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(visionkit.__path__, prefix="visionkit.")
    if not info.name.endswith("__main__"))


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [test for test in doctest.DocTestFinder().find(module, module.__name__)
            if test.examples]


WITH_EXAMPLES = [name for name in MODULES if _examples(name)]
# Examples that train and export whole models (6-13 s each): run by `make test-heavy`.
HEAVY_EXAMPLES = {"visionkit.interpret.report", "visionkit.export.exporter",
                  "visionkit.models.classification.applications", "visionkit.models.detection",
                  "visionkit.data.check", "visionkit.export", "visionkit.export.loader"}


def test_the_public_modules_have_examples():
    for name in ("visionkit.data.pipeline", "visionkit.models.registry", "visionkit.train.fit",
                 "visionkit.config", "visionkit.export"):
        assert name in WITH_EXAMPLES, f"{name} has no docstring examples"


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.heavy) if name in HEAVY_EXAMPLES else name
    for name in WITH_EXAMPLES])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
