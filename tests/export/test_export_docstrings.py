"""The Examples in the export modules' docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import tempfile

import pytest

MODULES = [
    "visionkit.export",
    "visionkit.export.versions",
    "visionkit.export.metadata",
    "visionkit.export.signatures",
    "visionkit.export.exporter",
    "visionkit.export.loader",
    "visionkit.export.predict",
    "visionkit.export.verify",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' mkdtemp() land here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
