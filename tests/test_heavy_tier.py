"""tests/heavy_tier.txt names tests that exist: a renamed or deleted test fails here instead
of leaving a dead entry (and its renamed test silently back in the default run)."""

from __future__ import annotations

import re
from pathlib import Path

from heavy_tier import heavy_node_ids, is_listed

ROOT = Path(__file__).resolve().parent.parent


def test_every_entry_names_an_existing_file_and_test_function():
    entries = heavy_node_ids()
    assert entries, "tests/heavy_tier.txt lists no tests"
    missing = []
    for entry in entries:
        path, _, rest = entry.partition("::")
        source = ROOT / path
        function = rest.split("[")[0]
        if not source.is_file() or (
                function and not re.search(rf"^def {re.escape(function)}\(",
                                           source.read_text(encoding="utf-8"), re.M)):
            missing.append(entry)
    assert not missing, f"tests/heavy_tier.txt names tests that do not exist: {missing}"


def test_a_listed_file_or_function_covers_its_tests_and_nothing_else():
    listed = ("tests/a.py", "tests/b.py::test_f", "tests/c.py::test_g[x]")
    assert is_listed("tests/a.py::test_anything[1]", listed)
    assert is_listed("tests/b.py::test_f", listed)
    assert is_listed("tests/b.py::test_f[param]", listed)
    assert not is_listed("tests/b.py::test_f_other", listed)
    assert is_listed("tests/c.py::test_g[x]", listed)
    assert not is_listed("tests/c.py::test_g[y]", listed)
    assert not is_listed("tests/ab.py::test_h", listed)
