"""Race every registered sampler on ORL faces and Fashion-MNIST and write the leaderboard.

    python scripts/leaderboard.py                              # both data sets, --decide --budget 15m, two judges
    python scripts/leaderboard.py --dataset orl_faces --budget 2000 --features fast   # a quick smoke run

For each data set it runs `aebench run --all --decide` (in-process, the same code path as the CLI): racing
rounds within `--budget`, until every pair of samplers that can be first is decided. It keeps the results
document under docs/leaderboard/<dataset>/results.json (small, committed, so anyone can diff), then writes
docs/leaderboard.md (per data set the recommendation, the rounds, a headline table and every metric in a
collapsible detail; with two judges, as by default, who they are and whether they agree: where Inception and
the `domain` judge put two samplers in opposite orders the page says so in one sentence and picks neither)
and the recommendation per data set between the `<!-- leaderboard:start -->` / `<!-- leaderboard:end -->`
markers of README.md. Which metrics rank is read from each results document
(aebench.reports.leaderboard.select_metrics). `--tables-only` rebuilds the pages from the kept results
without running anything. Run it under the shared heavy-job lock on a shared machine: it is hours of CPU
with Inception.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"orl_faces": [], "fashion_mnist": ["--set", "dataset.limit_train=20000"]}


def run_dataset(name: str, args: argparse.Namespace) -> Path:
    """`aebench run --all` on one data set; returns the kept results.json."""
    from aebench.cli import main
    from aebench.plugins import get_registry
    from aebench.sampler import available_samplers

    samplers = available_samplers()
    skipped = sorted(set(get_registry("sampler").names()) - set(samplers))
    if skipped:
        print(f"[leaderboard] skipping unavailable samplers: {', '.join(skipped)}", file=sys.stderr)
    keep = args.out / name / "results.json"
    with tempfile.TemporaryDirectory(prefix=f"aebench-leaderboard-{name}-") as tmp:
        argv = ["run", "--dataset", name, *DATASETS[name], "--sampler", ",".join(samplers), "--seeds", str(args.seeds),
                "--decide", "--budget", args.budget, "--features", args.features, "--out", tmp, "--no-figures", "--quiet"]
        if args.n is not None:
            argv += ["--n", str(args.n)]
        argv += args.run_args
        print("[leaderboard] aebench " + shlex.join(argv), file=sys.stderr)
        code = main(argv)
        produced = Path(tmp) / "results.json"
        if not produced.is_file():
            raise SystemExit(f"aebench run on {name} wrote no results (exit {code}).")
        if code not in (0, 1):  # 1: a sampler failed (recorded in the results), the rest ran
            raise SystemExit(f"aebench run on {name} failed with exit code {code}.")
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, keep)
    return keep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), help="data set (repeatable; default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the first round (default 1)")
    parser.add_argument("--budget", default="15m", help="what the racing rounds may spend per data set: a duration "
                                                         "(15m) or decoded images (20000); default 15m")
    parser.add_argument("--features", default="inception,domain",
                        help="feature extractors (judges) of the image metrics; default inception,domain: both, with "
                             "their agreement (the domain judge costs a small fraction of Inception)")
    parser.add_argument("--n", type=int, default=None, help="points per sampler and seed (default: aebench's)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "leaderboard", help="where results.json files go")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "leaderboard.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--tables-only", action="store_true", help="rebuild the pages from the kept results")
    parser.add_argument("run_args", nargs="*", help="more `aebench run` arguments, after --")
    args = parser.parse_args()
    from aebench.reports.leaderboard import leaderboard_markdown, replace_block

    names = args.dataset or list(DATASETS)
    if not args.tables_only:
        for name in names:
            run_dataset(name, args)
    docs = {}
    for name in names:
        path = args.out / name / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path} is missing; run without --tables-only first.")
        docs[name] = json.loads(path.read_text())
    flags = ["--seeds", str(args.seeds), "--budget", args.budget, "--features", args.features] + (
        ["--n", str(args.n)] if args.n else [])
    if args.dataset:
        flags = [f for n in names for f in ("--dataset", n)] + flags
    command = "python scripts/leaderboard.py " + shlex.join(flags)
    page, snippet = leaderboard_markdown(docs, command)
    args.page.parent.mkdir(parents=True, exist_ok=True)
    args.page.write_text(page)
    print(f"[leaderboard] wrote {args.page}", file=sys.stderr)
    readme = args.readme.read_text() if args.readme.is_file() else ""
    if "<!-- leaderboard:start -->" in readme:
        block = snippet + (f"\nThe headline tables, rounds and every metric: [docs/leaderboard.md](docs/leaderboard.md); "
                           f"regenerate with `{command}`.\n")
        args.readme.write_text(replace_block(readme, block))
        print(f"[leaderboard] updated the leaderboard block of {args.readme}", file=sys.stderr)
    print(snippet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
