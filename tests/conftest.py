"""Test-wide settings: quiet TensorFlow logs, a tiny digits set, the repository root."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from heavy_tier import heavy_node_ids, is_listed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Marks the tests listed in tests/heavy_tier.txt `heavy` (`make test-heavy`)."""
    listed = heavy_node_ids()
    for item in items:
        if is_listed(item.nodeid, listed):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope="session")
def tiny_digits():
    """96 training and 48 validation digits at 16x16, batch 16, seed 0."""
    import visionkit as vk

    return vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(96, 48)
