"""One lock file per cache entry, so that runs sharing a cache folder never compute the same entry at
the same time: the first takes the lock and computes; another finds the lock held, says once that it
waits, and reuses the entry once it is written. The locks are `filelock` locks (flock on POSIX): the
operating system releases them when their process ends, so a killed run never blocks the next one.
The lock file stays beside its entry (deleting it would race with a process about to take it)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_SUFFIX = ".lock"


def lock_path(path: str | Path) -> Path:
    """The lock file of the cache entry at `path`."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextmanager
def entry_lock(path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock of the cache entry at `path` for the block; when another process holds it, print one
    line saying what this one waits for, then wait."""
    from aebench.infra.console import err_console

    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        err_console.print(f"Waiting for another aebench process that is computing the {what} (lock {target})...",
                          soft_wrap=True, markup=False, highlight=False)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
