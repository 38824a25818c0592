"""Shared fixtures: every test gets its own aebench cache folder and a fresh plugin manager."""

from __future__ import annotations

import pytest

import aebench.plugins


@pytest.fixture(autouse=True)
def isolated_aebench(tmp_path_factory, monkeypatch):
    """AEBENCH_CACHE_DIR in a temporary folder, matplotlib without a display, plugins reloaded."""
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("aebench-cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    aebench.plugins.reset()
    yield
    aebench.plugins.reset()
