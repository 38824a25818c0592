"""The one way a cache entry is read or made: read it when it is there and whole; when it is missing or
damaged, take its lock (`aebench.infra.locks`), read it again (another run may have written it while
this one waited), and only then compute and write it. A damaged entry (truncated, failing its
checksum, written for something else) gets a one-line warning naming the file and why, and is
recomputed: never silently used, never silently replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from aebench.infra.locks import entry_lock

T = TypeVar("T")


class DamagedEntry(Exception):
    """A cache entry that exists but cannot be trusted; the message says why (it goes into the warning)."""


class OutdatedEntry(DamagedEntry):
    """A cache entry written by an older aebench, without the checksum this one verifies."""


def warn_damaged(path: Path, problem: DamagedEntry, what: str) -> None:
    from aebench.infra.console import err_console

    if isinstance(problem, OutdatedEntry):
        line = f"Note: the cached {what} {path} has no checksum (written by an older aebench); computing it again once."
    else:
        line = f"Warning: the cached {what} {path} is damaged ({problem}); computing it again."
    err_console.print(line, soft_wrap=True, markup=False, highlight=False)


def load_or_compute(path: str | Path, read: Callable[[Path], T], make: Callable[[], T], what: str,
                    exists: Callable[[Path], bool] | None = None) -> tuple[T, bool]:
    """(value, was_cached): `read(path)` when the entry is there and sound, else `make()` (which computes
    and writes the entry) under the entry's lock. `read` raises DamagedEntry for an entry it cannot
    trust; `exists` says whether there is an entry at all (default: `path` is a file)."""
    path = Path(path)
    present = exists or (lambda p: p.is_file())
    if present(path):
        try:
            return read(path), True
        except DamagedEntry:
            pass  # warned about below, under the lock, once it is certain no other run is rewriting it
    with entry_lock(path, what):
        if present(path):
            try:
                return read(path), True  # made by another run while this one waited
            except DamagedEntry as exc:
                warn_damaged(path, exc, what)
        return make(), False
