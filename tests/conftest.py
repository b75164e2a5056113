"""Test-wide settings: quiet TensorFlow logs, a tiny digits set, the repository root."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY_TIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "heavy_tier.txt")


def _heavy_node_ids() -> tuple[str, ...]:
    with open(HEAVY_TIER, encoding="utf-8") as file:
        lines = (line.strip() for line in file)
        return tuple(line for line in lines if line and not line.startswith("#"))


def _is_listed(node_id: str, listed: tuple[str, ...]) -> bool:
    """A listed file covers its tests, a listed function all its parametrizations."""
    return any(node_id == entry or node_id.startswith((entry + "::", entry + "["))
               for entry in listed)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Marks the tests listed in tests/heavy_tier.txt `heavy` (`make test-heavy`)."""
    listed = _heavy_node_ids()
    for item in items:
        if _is_listed(item.nodeid, listed):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope="session")
def tiny_digits():
    """96 training and 48 validation digits at 16x16, batch 16, seed 0."""
    import visionkit as vk

    return vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
