"""A per-cell time limit (`--cell-timeout 10m`, TOML `cell_timeout`): a sampler that hangs, in its fit
or its sampling, fails its cell with "timed out after 10m" and the other cells still run.

Python cannot stop a thread from outside, so each executor does what it can do safely:

- local (cells in this process): SIGALRM on the main thread raises `CellTimeout` when the time is up.
  It interrupts Python code (loops, `time.sleep`, waits) and torch work between operators; a single
  C/C++ call that never returns to the interpreter (one huge operator, a deadlock inside an extension)
  is interrupted only when it returns. Not on Windows (no SIGALRM), nor when aebench runs outside the
  main thread: the limit is then not enforced, and a one-line warning says so.
- dask: a watchdog on the client asks the workers every few seconds how long their cells have been
  running; a cell past the limit is cancelled and its worker restarted by its nanny, which ends any
  hang, C-level ones included (a worker without a nanny cannot be restarted: its thread stays busy).

The fit of a sampler (once per spec) gets the same limit as each of its cells.
"""

from __future__ import annotations

import math
import re
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from aebench.errors import OptionError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*$")


class CellTimeout(BaseException):
    """The cell's time is up (a BaseException: a sampler's `except Exception` must not swallow it)."""


def parse_duration(value: Any, what: str = "--cell-timeout (cell_timeout)") -> float | None:
    """Seconds from 600, "600", "90s", "10m", "1.5h"; None for None. Anything else is a one-line error."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise OptionError(f"{what} must be a duration such as 90s, 10m or 1h, got {value!r}.")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise OptionError(f"{what} must be a duration such as 90s, 10m or 1h (a plain number is seconds), "
                              f"got {value!r}.")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if not math.isfinite(seconds) or seconds <= 0:
        raise OptionError(f"{what} must be a positive duration such as 90s, 10m or 1h, got {value!r}.")
    return seconds


def format_duration(seconds: float) -> str:
    """600 -> '10m', 90 -> '90s', 7200 -> '2h': how a limit is shown in errors (whole units only)."""
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def timed_out(seconds: float) -> str:
    """The error text of a cell or fit that ran out of time."""
    return f"timed out after {format_duration(seconds)} (--cell-timeout)"


def can_interrupt() -> bool:
    """Whether `time_limit` can enforce a limit here (SIGALRM exists and this is the main thread)."""
    return hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer") and (
        threading.current_thread() is threading.main_thread())


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `CellTimeout` in the block once `seconds` have passed (None: no limit; see the module notes)."""
    if seconds is None or not can_interrupt():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise CellTimeout()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
