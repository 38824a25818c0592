"""Does the default thread count use the machine? Runs the warm default job (`aebench run --sampler
plane_paths`, Inception features, the real side already cached) back to back with the default threads
(auto) and with `--threads N`, alternating, and prints each run's wall time and chosen thread count,
the medians and their ratio. On an idle machine auto must come within 10% of `--threads <cores>`:
the exit code is 1 when it does not, and 2 when other processes kept a core busy before it started
(then the ratio is printed but is not the check: run it on a quiet machine). The order alternates so
neither side always runs first.

    python benchmarks/threads_check.py                 # 3 runs each, against --threads <cores>
    python benchmarks/threads_check.py --repeats 5 --threads 2 -- --dataset fashion_mnist

Uses the aebench next to this Python (`python -m aebench.cli`) and the usual cache (AEBENCH_CACHE_DIR);
one run first warms the cache and is not counted. Extra arguments after `--` go to every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_job(extra: list[str], threads: str | None, out: Path) -> tuple[float, dict]:
    """Wall seconds of one `aebench run` and its results' environment section."""
    cmd = [sys.executable, "-c", "import sys; from aebench.cli import main; sys.exit(main(sys.argv[1:]))",
           "run", "--sampler", "plane_paths", "--quiet", "--no-figures", "--force", "--out", str(out), *extra]
    if threads is not None:
        cmd += ["--threads", threads]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # auto must decide
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"aebench run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return seconds, json.loads((out / "results.json").read_text())["environment"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                                  else os.cpu_count()), help="the fixed count to compare with")
    parser.add_argument("extra", nargs="*", help="arguments for every aebench run (after --)")
    args = parser.parse_args(argv)
    from aebench.infra.threads import measure_auto

    idle = measure_auto(window_s=1.0)
    print(f"before: {idle.reason()}" + (" -- NOT IDLE: the ratio below is not the check" if idle.threads <
                                         idle.cores else ""))
    times: dict[str, list[float]] = {"auto": [], args.threads: []}
    with tempfile.TemporaryDirectory(prefix="aebench-threads-check-") as tmp:
        out = Path(tmp) / "out"
        seconds, _ = run_job(args.extra, args.threads, out)
        print(f"warm-up run: {seconds:.1f} s")
        for i in range(args.repeats):
            pair = [("auto", None), (args.threads, args.threads)]
            for label, threads in pair if i % 2 == 0 else pair[::-1]:
                seconds, env = run_job(args.extra, threads, out)
                times[label].append(seconds)
                choice = env.get("threads_choice") or {}
                changes = choice.get("changes") or []
                later = f"; later {[c['threads'] for c in changes]}" if changes else ""
                print(f"run {i + 1} {('--threads ' + label) if threads else 'default':>12}: {seconds:6.1f} s, "
                      f"threads {env.get('threads')}{later} ({choice.get('reason', 'no reason recorded')})")
    auto, fixed = statistics.median(times["auto"]), statistics.median(times[args.threads])
    print(f"median default (auto): {auto:.1f} s   median --threads {args.threads}: {fixed:.1f} s   "
          f"ratio auto/fixed: {auto / fixed:.3f} (target <= 1.10 on an idle machine)")
    if hasattr(os, "getloadavg"):
        print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if idle.threads < idle.cores:
        print("not idle at the start: no verdict (exit 2)")
        return 2
    return 0 if auto / fixed <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
