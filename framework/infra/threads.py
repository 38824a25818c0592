"""How many CPU threads a run uses, in one place (torch's intra-op pool and every BLAS/OpenMP pool
numpy, scipy and scikit-learn use).

On a machine whose cores are shared, more threads than free cores make things slower, not faster:
idle-waiting OpenMP threads made small operations (scikit-learn's EM, small matrix products) up to
50x slower with 2 threads on a busy 2-core machine. So the default, `auto`, takes the cores this
process may run on minus the ones other processes keep busy NOW, at least 1.

"Now" is measured, not averaged: two readings of the kernel's per-CPU time counters (`/proc/stat`)
`WINDOW_S` apart, minus what this process and its descendants used meanwhile (`/proc/<pid>/stat`), give
the cores other processes kept busy; a fraction of half a core or more counts as a core. The 1-minute
load average, used before, remembers the last minute: a finished command's load lingered in it, so runs
on an idle 2-core machine took 1 thread and were 1.6x slower than with 2. Where /proc is missing
(macOS, Windows) auto falls back to that load average.

During a run, `recheck_threads()` (called before each feature extraction, the heavy stage) reads the
counters again and compares them with the last reading, at no cost in waiting: a run that started
beside a busy process takes the cores back once it ends, and backs off when another one starts.
`--threads N` and an `OMP_NUM_THREADS` set by the user win over auto and are never changed. Results do
not depend on the thread count beyond float rounding in a few reductions.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

from aebench.errors import OptionError

PROC = Path("/proc")
WINDOW_S = 0.25  # the first reading's window: 25 clock ticks per core at the usual 100 Hz
MIN_RECHECK_S = 0.5  # a re-check compares with the last reading only after this long (else too few ticks)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count where that is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _allowed_cpus() -> set[int] | None:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


@dataclass(frozen=True)
class CpuCounters:
    """One reading, in clock ticks: what the CPUs this process may use spent busy and in all, and what
    this process and its descendants used (children already waited for included)."""

    busy: int
    total: int
    cpus: int
    own: int
    at: float  # time.monotonic() of the reading


def _cpu_lines(text: str, cpus: set[int] | None) -> tuple[int, int, int]:
    """(busy, total, cpus counted) from /proc/stat's per-CPU lines. Busy: user, nice, system, irq,
    softirq and steal (a hypervisor's steal is time these cores were not free either); idle and
    iowait are free; guest time is already inside user."""
    busy = total = count = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in rest.split()[:8]] + [0] * 8
        user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
        b = user + nice + system + irq + softirq + steal
        busy += b
        total += b + idle + iowait
        count += 1
    return busy, total, count


def _pid_stat(proc: Path, pid: str) -> tuple[int, int, int] | None:
    """(ppid, own ticks = utime + stime, waited-for children's ticks = cutime + cstime) of one process."""
    try:
        text = (proc / pid / "stat").read_text()
    except OSError:  # it ended meanwhile
        return None
    fields = text[text.rfind(")") + 2:].split()  # after the command name, which may hold spaces
    try:
        return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    except (IndexError, ValueError):
        return None


def _own_ticks(proc: Path, pid: int) -> int:
    """Ticks used by process `pid`, its live descendants, and its children already waited for."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _pid_stat(proc, entry.name)
            if stat is not None:
                stats[int(entry.name)] = stat
    if pid not in stats:
        return 0
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    # each live process's own ticks and those of the children it already waited for (a descendant's
    # reaped children count too: their time moved into its cutime, not out of the run)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats[p][1] + stats[p][2]
        todo.extend(children.get(p, ()))
    return total


def read_counters(proc: Path | None = None, pid: int | None = None,
                  cpus: Iterable[int] | None = None) -> CpuCounters | None:
    """A reading of the CPU counters (see module doc) from `proc` (default: `PROC`, /proc); None where
    its stat cannot be read."""
    proc = PROC if proc is None else proc
    try:
        busy, total, count = _cpu_lines((proc / "stat").read_text(), set(cpus) if cpus is not None else _allowed_cpus())
        own = _own_ticks(proc, os.getpid() if pid is None else pid)
    except (OSError, ValueError):
        return None
    return CpuCounters(busy, total, count, own, time.monotonic()) if count else None


def others_busy(before: CpuCounters, after: CpuCounters) -> float | None:
    """Cores other processes kept busy between two readings (None when no tick passed)."""
    elapsed = (after.total - before.total) / max(1, after.cpus)  # ticks per core
    if elapsed <= 0:
        return None
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / elapsed


def auto_threads(cores: int, busy: float) -> int:
    """The auto rule: `cores` minus the cores others keep busy (half a core or more counts), at least 1."""
    return max(1, min(cores, cores - int(busy + 0.5)))


@dataclass
class ThreadChoice:
    """The thread count of a run, and why: `source` is 'threads' (the setting), 'OMP_NUM_THREADS' or
    'auto'; for auto, the cores others kept busy, how that was measured, and later re-checks' changes."""

    threads: int
    source: str
    cores: int
    others_busy: float | None = None
    window_s: float | None = None
    measured_by: str | None = None  # '/proc/stat', 'load average', or None (not measured)
    changes: list[dict[str, Any]] = field(default_factory=list)
    last: CpuCounters | None = field(default=None, repr=False)
    started: float = field(default_factory=time.monotonic, repr=False)
    first: int = field(default=0, repr=False)  # the count chosen at the start (`threads` follows re-checks)

    def __post_init__(self) -> None:
        self.first = self.first or self.threads

    def reason(self) -> str:
        if self.source == "threads":
            return f"{self.first} thread(s), as set (--threads / threads =)"
        if self.source == "OMP_NUM_THREADS":
            return f"{self.first} thread(s) from OMP_NUM_THREADS, which wins over auto"
        if self.others_busy is None:
            return f"auto: {self.first} of {self.cores} cores (others' use could not be measured)"
        over = f" over {self.window_s:.2f} s" if self.window_s is not None else ""
        return (f"auto: {self.first} of {self.cores} cores; other processes kept {self.others_busy:.2f} "
                f"cores busy ({self.measured_by}{over})")

    def record(self) -> dict[str, Any]:
        """The results document's `environment.threads_choice` (its `changes` list is this choice's own,
        so re-checks later in the run show in every later write)."""
        return {"threads": self.first, "source": self.source, "cores": self.cores,
                "others_busy": None if self.others_busy is None else round(self.others_busy, 3),
                "window_s": None if self.window_s is None else round(self.window_s, 3),
                "measured_by": self.measured_by, "reason": self.reason(), "changes": self.changes}


def parse_threads(threads: int | str | None) -> int | None:
    """Check setting `threads` without measuring anything: a positive int, or None for auto."""
    if threads is None or (isinstance(threads, str) and threads.strip().lower() == "auto"):
        return None
    if isinstance(threads, str) and threads.strip().isdigit():
        threads = int(threads)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise OptionError(f"threads must be a positive integer or 'auto', got {threads!r}; e.g. --threads 2.")
    return threads


def measure_auto(cores: int | None = None, window_s: float | None = None, proc: Path | None = None,
                 sleep: Callable[[float], None] | None = None) -> ThreadChoice:
    """The auto choice from what other processes use during `window_s` (default `WINDOW_S`), or from the
    load average where /proc cannot be read."""
    cores = available_cores() if cores is None else cores
    before = read_counters(proc)
    if before is not None:
        (time.sleep if sleep is None else sleep)(WINDOW_S if window_s is None else window_s)
        after = read_counters(proc)
        busy = others_busy(before, after) if after is not None else None
        if after is not None and busy is not None:
            return ThreadChoice(auto_threads(cores, busy), "auto", cores, busy, after.at - before.at, "/proc/stat",
                                last=after)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ThreadChoice(cores, "auto", cores)
    return ThreadChoice(auto_threads(cores, load), "auto", cores, load, None, "load average")


def choose_threads(threads: int | str | None) -> ThreadChoice:
    """The thread count for setting `threads` and why (see module doc)."""
    n = parse_threads(threads)
    if n is not None:
        return ThreadChoice(n, "threads", available_cores())
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return ThreadChoice(max(1, torch.get_num_threads()), "OMP_NUM_THREADS", available_cores())
    return measure_auto()


def resolve_threads(threads: int | str | None) -> int:
    """The thread count for setting `threads`: a positive int, or None/'auto' (see module doc)."""
    return choose_threads(threads).threads


def _set_pools(n: int) -> Any:
    """Set the BLAS/OpenMP pools' and torch's size; returns threadpoolctl's limiter (None without it),
    which restores what was there before: it is made first, before torch changes OpenMP's count."""
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(n)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    torch.set_num_threads(n)
    return limiter


_active: list[ThreadChoice] = []  # the choices of the thread_limit blocks now open, innermost last


def active_choice() -> ThreadChoice | None:
    """The choice of the innermost open `thread_limit` block, if any."""
    return _active[-1] if _active else None


def threads_record() -> dict[str, Any] | None:
    """The results document's `environment.threads_choice` for the open `thread_limit` block (None outside)."""
    choice = active_choice()
    return choice.record() if choice is not None else None


def recheck_threads(proc: Path | None = None) -> int | None:
    """Between stages: with auto, re-measure others' use since the last reading and resize the pools
    if the choice changed (the change is recorded in the choice). Returns the thread count in use, or
    None outside an auto `thread_limit` block (nothing is changed then)."""
    choice = active_choice()
    if choice is None or choice.source != "auto":
        return None
    if choice.last is None or time.monotonic() - choice.last.at < MIN_RECHECK_S:
        return choice.threads
    now = read_counters(proc)
    if now is None:
        return choice.threads
    busy = others_busy(choice.last, now)
    choice.last = now
    if busy is None:
        return choice.threads
    n = auto_threads(choice.cores, busy)
    if n != choice.threads:
        _set_pools(n)
        choice.changes.append({"after_s": round(now.at - choice.started, 2), "threads": n,
                               "others_busy": round(busy, 3)})
        choice.threads = n
    return n


@contextmanager
def thread_limit(threads: int | str | None) -> Iterator[int]:
    """Run the body with torch's and the BLAS/OpenMP pools' thread count set for setting `threads`;
    both are restored afterwards. Yields the count; `active_choice()` says why, and under auto
    `recheck_threads()` may change it between stages."""
    choice = choose_threads(threads)
    before = torch.get_num_threads()
    limiter = _set_pools(choice.threads)
    _active.append(choice)
    try:
        yield choice.threads
    finally:
        _active.remove(choice)
        torch.set_num_threads(before)
        if limiter is not None:
            limiter.restore_original_limits()
