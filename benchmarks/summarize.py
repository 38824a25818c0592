"""Turn a pytest-benchmark JSON file into a markdown summary of the speed ratios.

    python benchmarks/summarize.py benchmarks/results/quick.json --out benchmarks/results/summary.md

Prints the table, writes it to --out, and appends it to $GITHUB_STEP_SUMMARY when that is set.
Targets are shown, never enforced: timing on shared CI machines is too noisy to fail a build on."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# column -> (label, target as (comparison, value) or None)
COLUMNS = {
    "speedup_per_call": ("x faster, per call", None),
    "speedup_per_sampler": ("x faster, per sampler", (">=", 10.0)),
    "memory_ratio": ("x less memory", None),
    "overhead": ("run / (decode+features)", ("<=", 1.25)),
    "images_per_s": ("images/s", None),
    "samples_per_s": ("samples/s", None),
    "of_floor": ("of the GEMM floor", None),
}
TARGETS = {"fid": {"speedup_per_sampler": (">=", 2.0), "speedup_per_call": (">=", 2.0)},
           "inception_gemm_floor": {"of_floor": (">=", 0.75)}}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _target(row_name: str, column: str):
    row_name = row_name.removeprefix("bench_")
    for prefix, targets in TARGETS.items():
        if row_name.startswith(prefix) and column in targets:
            return targets[column]
    if row_name.startswith(("prdc", "knn")) or column == "overhead":
        return COLUMNS[column][1]
    return None


def _meets(value: float, target) -> str:
    if target is None or not isinstance(value, (int, float)):
        return ""
    op, limit = target
    ok = value >= limit if op == ">=" else value <= limit
    return f" {'✅' if ok else '⚠️'} ({op} {limit:g})"


def summarize(data: dict[str, Any]) -> str:
    benches = data.get("benchmarks", [])
    machine = data.get("machine_info", {})
    first = benches[0]["extra_info"] if benches else {}
    lines = [
        f"## aebench speed ({first.get('mode', '?')} sizes)",
        "",
        f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"{first.get('cpu_count', '?')} CPUs, torch threads {first.get('torch_threads', '?')}, "
        f"1-min load average {first.get('load_avg_1min', '?')}. Ratios compare against baselines timed "
        f"in the same run (best of the rounds). Targets are shown, not enforced.",
        "",
        "| benchmark | best time (s) | " + " | ".join(label for label, _ in COLUMNS.values()) + " | details |",
        "|---|---:|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for bench in benches:
        extra = bench.get("extra_info", {})
        name = bench["name"]
        cells = []
        for column in COLUMNS:
            value = extra.get(column)
            cells.append("" if value is None else _fmt(value) + _meets(value, _target(name, column)))
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in extra.items()
                            if k not in COLUMNS and k not in ("mode", "cpu_count", "torch_threads", "load_avg_1min"))
        lines.append(f"| {name} | {bench['stats']['min']:.4g} | " + " | ".join(cells) + f" | {details} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    if not args.json_file.is_file():
        print(f"{args.json_file} does not exist; run the benchmarks with --benchmark-json first.", file=sys.stderr)
        return 2
    text = summarize(json.loads(args.json_file.read_text(encoding="utf-8")))
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
