"""The tests `make test` leaves to `make test-heavy`: tests/heavy_tier.txt, read here by
tests/conftest.py (which marks each listed test `heavy`) and tests/test_heavy_tier.py."""

from __future__ import annotations

import os

HEAVY_TIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "heavy_tier.txt")


def heavy_node_ids() -> tuple[str, ...]:
    with open(HEAVY_TIER, encoding="utf-8") as file:
        lines = (line.strip() for line in file)
        return tuple(line for line in lines if line and not line.startswith("#"))


def is_listed(node_id: str, listed: tuple[str, ...]) -> bool:
    """A listed file covers its tests, a listed function all its parametrizations."""
    return any(node_id == entry or node_id.startswith((entry + "::", entry + "["))
               for entry in listed)
