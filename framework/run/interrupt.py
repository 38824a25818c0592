"""A run stopped from outside (Ctrl-C, SIGTERM from a scheduler or `kill`, a Dask scheduler lost
mid-run) keeps what it finished: its results.json, rewritten after every cell, is marked
`"status": "interrupted"` with the reason, the command ends with one line that says how many cells are
kept and how to finish (`--resume`), and the exit status is the conventional 128 + signal (130 for
Ctrl-C, 143 for SIGTERM; 1 for a lost scheduler).

SIGTERM normally ends Python at once, with no cleanup; while a run works it raises `Terminated`
instead, a BaseException like KeyboardInterrupt, so no `except Exception` (the cell runner's, a
plugin's) can swallow it. The document is marked from its last complete write on disk, so nothing
half-computed is ever recorded.
"""

from __future__ import annotations

import json
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from aebench.errors import AebenchError

SIGNAL_TEXT = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
RESUMABLE = ("running", "interrupted")  # document statuses a run may continue from


class Terminated(BaseException):
    """SIGTERM, raised in the main thread while a run works."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal, after its document was marked: `message` is the line to show, `exit_code`
    128 + the signal. A KeyboardInterrupt, so Python callers of `run_benchmark` see Ctrl-C as before."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class RunStopped(AebenchError):
    """Something outside the run stopped it (a lost Dask scheduler); the finished cells are kept."""

    exit_code = 1


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Terminated` in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (a second Ctrl-C must not cut the write that
    records the first); they are delivered when it ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def mark_interrupted(out: str | Path, plan_hash: str, reason: str) -> tuple[int, int] | None:
    """Mark the run of plan `plan_hash` in `out` as interrupted, for `reason`; returns (cells finished,
    cells planned), or None when results.json there is not this plan's unfinished run (the run stopped
    before writing it, or it belongs to an earlier run, which stays as it was)."""
    from aebench.results.document import now, write_results
    from aebench.run.folder import RESULTS_NAME

    path = Path(out) / RESULTS_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("status") not in RESUMABLE or (doc.get("plan") or {}).get("hash") != plan_hash:
        return None
    doc["status"] = "interrupted"
    doc["interrupted"] = {"reason": reason, "at": now()}
    with signals_held():
        write_results(doc, Path(out))
    return len(doc.get("cells") or []), len((doc.get("plan") or {}).get("cells") or [])


def kept_text(out: str | Path, counts: tuple[int, int] | None) -> str:
    """What was kept and how to finish, for the one line the user sees."""
    if counts is None:
        return " before the run wrote its results; nothing to keep"
    done, planned = counts
    return (f": {done} of {planned} cells finished and are kept in {Path(out) / 'results.json'} (status interrupted); "
            f"run the same command with --resume to compute the other {planned - done}")


def interrupted(exc: BaseException, out: str | Path, plan_hash: str) -> BaseException:
    """The exception to raise for a run in `out` stopped by `exc` (KeyboardInterrupt, Terminated or
    RunStopped), once its document is marked."""
    if isinstance(exc, RunInterrupted):
        return exc
    if isinstance(exc, RunStopped):
        counts = mark_interrupted(out, plan_hash, str(exc))
        return RunStopped(f"{str(exc).rstrip('.')}{kept_text(out, counts)}.")
    signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
    counts = mark_interrupted(out, plan_hash, SIGNAL_TEXT[signum])
    return RunInterrupted(f"Interrupted by {SIGNAL_TEXT[signum]}{kept_text(out, counts)}.", 128 + int(signum))
