"""Pytest fixtures for aebench's own tests, its benchmarks and plugin authors' tests.

Use them by importing into a conftest.py: ``from aebench.testing import isolated_aebench  # noqa: F401``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

import aebench.plugins


@pytest.fixture(autouse=True)
def isolated_aebench(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own aebench cache folder (AEBENCH_CACHE_DIR), matplotlib without a display, and
    freshly loaded plugins (what one test registers never leaks into the next)."""
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("aebench-cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    aebench.plugins.reset()
    yield
    aebench.plugins.reset()


def use_only_plugins(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Load only these built-in plugin modules (and no installed ones), so a test does not depend on
    unrelated plugins."""
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", tuple(modules))
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()
