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


def shape_mismatches(value: object, declared: object, where: str = "") -> list[str]:
    """Every place where `value` (parsed JSON) departs from the type `declared` (a TypedDict, `dict[str, X]`,
    `list[X]`, `Literal`, a union, a plain type or `Any`), one line each: a key the TypedDict does not
    declare, a required key that is missing, or a value of another type. An int passes for a float; a bool
    passes for neither. A test of a real run's document against `ResultsDocument` keeps the writer and the
    schema from drifting apart."""
    import types
    import typing

    origin, args = typing.get_origin(declared), typing.get_args(declared)
    path = where or "(document)"
    if declared is typing.Any or declared is object:
        return []
    if origin is typing.Union or origin is types.UnionType:
        tries = [shape_mismatches(value, option, where) for option in args]
        if any(not t for t in tries):
            return []
        # a structured value is reported against the option of its own kind (an object against the TypedDict)
        same_kind = [t for option, t in zip(args, tries) if _kind(option) == _kind(type(value))]
        return min(same_kind, key=len) if same_kind else [f"{path}: {value!r:.80} is none of {declared}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if declared is type(None) or declared is None:
        return [] if value is None else [f"{path}: {value!r:.80} is not null"]
    if isinstance(declared, type) and typing.is_typeddict(declared):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} is not an object ({declared.__name__})"]
        hints = typing.get_type_hints(declared)
        out = [f"{where}.{key}: not declared in {declared.__name__}".lstrip(".")
               for key in value if key not in hints]
        out += [f"{where}.{key}: required by {declared.__name__}, missing".lstrip(".")
                for key in getattr(declared, "__required_keys__", ()) if key not in value]
        for key, item in value.items():
            if key in hints:
                out += shape_mismatches(item, hints[key], f"{where}.{key}".lstrip("."))
        return out
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} is not an object"]
        key_type, item_type = args or (str, typing.Any)
        out = []
        for key, item in value.items():
            out += shape_mismatches(key, key_type, f"{where}[{key!r}] key")
            out += shape_mismatches(item, item_type, f"{where}.{key}".lstrip("."))
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} is not a list"]
        (item_type,) = args or (typing.Any,)
        return [m for i, item in enumerate(value) for m in shape_mismatches(item, item_type, f"{where}[{i}]")]
    if declared is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif declared is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(declared, type):
        ok = isinstance(value, declared)
    else:
        raise TypeError(f"shape_mismatches cannot check against {declared!r} (at {path})")
    return [] if ok else [f"{path}: {value!r:.80} is not a {getattr(declared, '__name__', declared)}"]


def _kind(tp: object) -> str:
    """'object', 'list' or 'plain': which JSON kind a declared type (or a value's type) stands for."""
    import typing

    if tp is dict or typing.get_origin(tp) is dict or (isinstance(tp, type) and typing.is_typeddict(tp)):
        return "object"
    return "list" if tp is list or typing.get_origin(tp) is list else "plain"
