"""Pytest fixtures and helpers for aebench's own tests, its benchmarks and plugin authors' tests.

Use them by importing into a conftest.py: ``from aebench.testing import isolated_aebench  # noqa: F401``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
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


def sigkill_when(proc: subprocess.Popen[bytes], marker: Path, timeout: float = 240) -> None:
    """Wait until `proc` creates the file `marker`, then SIGKILL it (no cleanup handler can run): the
    crash that a run's results document must survive. Fails the test if `proc` ends or never gets there."""
    import signal
    import time

    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached the stalling sampler"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def row_of(doc: dict, name: str) -> dict:
    """The reference or sampler row called `name` of a results document."""
    return next(r for r in [*doc["references"], *doc["samplers"]] if r["name"] == name)


def set_value(doc: dict, name: str, key: str, value: float, low: float | None = None,
              high: float | None = None) -> dict:
    """Give one row's metric a value and (optionally) a 95% interval, with no seed spread: a case for
    ranking and comparison tests built from a real run's document. Returns the document."""
    entry = row_of(doc, name)["metrics"][key]
    entry["value"] = value
    for field in ("low", "high", "std", "per_seed"):
        entry.pop(field, None)
    if low is not None:
        entry["low"], entry["high"] = low, high
    return doc
