"""Wall time and peak resident memory of one command, measured the way `/usr/bin/time -v` does
(the kernel's high-water mark of that child process tree, from wait4), appended as one JSON line.

    python benchmarks/memory_run.py --label default-cold --log benchmarks/results/memory.jsonl -- \
        aebench run --sampler plane_paths --out /tmp/out

Used for the memory and scale tables in benchmarks/README.md. The peak is that of the process that
does the work (children of it count only if they are waited for), which is what a user's machine sees.
Run heavy commands under the shared lock on a shared machine: `flock /tmp/aebench-heavy.lock python ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def measure(command: list[str], env: dict[str, str] | None = None, output: Any = None) -> dict[str, float | int]:
    """Run `command` (its stdout and stderr to `output`, a file, when given); return its exit code,
    wall seconds, CPU seconds and peak resident MiB."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_mb": round(usage.ru_maxrss / 1024.0, 1)}  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="name of this measurement in the log")
    parser.add_argument("--log", type=Path, default=None, help="append the JSON line to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    result = {"label": args.label, **measure(command), "command": " ".join(command)}
    line = json.dumps(result)
    print(line, flush=True)
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        with args.log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return int(result["rc"] != 0)


if __name__ == "__main__":
    sys.exit(main())
