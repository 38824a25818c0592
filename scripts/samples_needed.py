"""How many samples does each metric need to tell neighbouring ladder steps apart?

For a data set's model, build the known-answer ladders of `aebench validate` (aebench.validation) on a base
of real held-out latents, and score the first n rows of steps 0, 1 and 2 of every ladder a metric claims
(`Column.detects`) at growing n, through the metric's normal `compute` with its own 95% interval. Step
k -> k+1 is *separated* at n when the intervals do not overlap and step k+1 is the worse one. The table
gives, per metric and claimed ladder, the smallest n of the grid from which 0 -> 1 (and 1 -> 2) stays
separated at every larger n of the grid ("-": not within the grid). With several seeds, the largest n over
the seeds (each seed: another base set, other replacement points and clusters).

The first n rows of a step are a random subset of it (the base is in random order), so for the mixture
ladders (contamination, moments, memorisation) the replaced share among them varies around the step's
share like a sample from the mixture would. Image metrics reuse the features `aebench validate` cached for
the same seed and base size. Metrics without an interval of their own (`fid_recon`) get value +- 1.96 sd
over 20 random halves, computed here (marked * in the table).

    python scripts/samples_needed.py --dataset orl_faces --seeds 3 --out docs/samples_needed_orl.json
    python scripts/samples_needed.py --dataset fashion_mnist --set dataset.limit_train=20000 \\
        --sizes 16,32,64,128,256,512,1024,2048,4096 --image-sizes 16,32,64,128
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from typing import Any

import torch

from aebench.maths.bootstrap import half_sample_rows
from aebench.metric import FakeSide, Metric, MetricValue
from aebench.options import parse_assignments
from aebench.run.cells import build_metrics
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.setup import prepare
from aebench.validation.ladders import build_ladders
from aebench.validation.run import choose_split, materialise, validation_real_side

LATENT = ("latent_fd", "latent_mmd", "latent_1nn", "latent_copies", "latent_swd", "latent_energy")
IMAGE = ("fid", "kid", "swd_recon", "energy_recon")  # keys fid_recon, kid_recon, swd_recon, energy_recon
IMAGE_KEYS = ("fid_recon", "kid_recon", "swd_recon", "energy_recon")
STEPS = 3  # steps 0, 1, 2 of each ladder


def interval(metric: Metric, fake: FakeSide, real: Any, key: str, value: MetricValue) -> tuple[float, float, bool]:
    """(low, high, made here): the metric's own interval, else +- 1.96 sd over 20 random halves."""
    if value.low is not None and value.high is not None:
        return value.low, value.high, False
    n = int((fake.features if fake.features is not None else fake.latents).shape[0])
    halves = []
    for rows in half_sample_rows(n, 20, fake.seed):
        part = FakeSide(fake.name, fake.latents[rows], features=None if fake.features is None else fake.features[rows],
                        seed=fake.seed)
        halves.append(metric.compute(part, real)[key].value)
    sd = float(torch.tensor(halves, dtype=torch.float64).std())
    return value.value - 1.959963984540054 * sd, value.value + 1.959963984540054 * sd, True


def separated(a: tuple[float, float], b: tuple[float, float], higher_is_better: bool) -> bool:
    """Whether step b is worse than step a with disjoint intervals."""
    return b[1] < a[0] if higher_is_better else b[0] > a[1]


def smallest_stable(sizes: list[int], ok: dict[int, bool]) -> int | None:
    """The smallest size from which every larger size of the grid is separated too."""
    best = None
    for n in reversed(sizes):
        if not ok.get(n, False):
            break
        best = n
    return best


def measure(setup: Any, metrics: list[Metric], keys: list[str], sizes: list[int], size: int, seed: int,
            features: bool) -> dict[str, Any]:
    """Per key and claimed ladder: the step values and intervals at every size, and the smallest separating
    sizes for 0 -> 1 and 1 -> 2."""
    split = choose_split(setup, size, seed)
    real = validation_real_side(setup, split)
    base = setup.real.heldout_latents[split.base]
    ladders = build_ladders(base, real.train_latents, real.stats, steps=6, clusters=8, seed=seed)
    fields, counts = materialise(setup, ladders, {"features"} if features else set(), quiet=True)
    memo: dict[tuple[str, int, str], tuple[MetricValue, tuple[float, float, bool]]] = {}
    out: dict[str, Any] = {}
    for metric in metrics:
        for column in metric.columns:
            if column.key not in keys:
                continue
            for ladder_name in column.detects:
                if ladder_name not in ladders.ladders:
                    continue
                ladder = ladders.ladders[ladder_name]
                rows: dict[int, list[dict[str, Any]]] = {}
                for n in sizes:
                    if n > base.shape[0]:
                        continue
                    per_step = []
                    for step in ladder.steps[:STEPS]:
                        latents = ladders.latents(step)[:n]
                        feats = ladders.gather(step, fields["features"])[:n] if features else None
                        digest = hashlib.sha256((latents.numpy().tobytes() if feats is None
                                                 else feats.numpy().tobytes())).hexdigest()
                        if (column.key, n, digest) not in memo:
                            fake = FakeSide(ladder_name, latents, features=feats, seed=seed)
                            value = metric.compute(fake, real)[column.key]
                            memo[(column.key, n, digest)] = (value, interval(metric, fake, real, column.key, value))
                        value, (low, high, made) = memo[(column.key, n, digest)]
                        per_step.append({"value": value.value, "low": low, "high": high, "interval_made_here": made})
                    rows[n] = per_step
                hib = bool(column.higher_is_better)
                done = sorted(rows)
                first = {n: separated((r[0]["low"], r[0]["high"]), (r[1]["low"], r[1]["high"]), hib) for n, r in rows.items()}
                second = {n: separated((r[1]["low"], r[1]["high"]), (r[2]["low"], r[2]["high"]), hib) for n, r in rows.items()}
                out.setdefault(column.key, {})[ladder_name] = {
                    "levels": ladder.levels[:STEPS], "sizes": {str(n): rows[n] for n in done},
                    "n_0_1": smallest_stable(done, first), "n_1_2": smallest_stable(done, second)}
    return {"results": out, "split": split.mode, "base": int(base.shape[0]), "features": counts}


def table(per_seed: list[dict[str, Any]], keys: list[str], sizes: list[int]) -> list[str]:
    """Markdown: per key and claimed ladder, the largest over seeds of the smallest separating n."""
    ladders = ("collapse", "spread", "contamination", "mode_drop", "moments", "memorisation")
    lines = ["| metric | " + " | ".join(ladders) + " |", "| --- |" + " ---: |" * len(ladders)]

    def worst(values: list[int | None]) -> str:
        return "-" if any(v is None for v in values) else str(max(values))  # type: ignore[type-var]

    for key in keys:
        cells = []
        made = False
        for ladder in ladders:
            entries = [s["results"].get(key, {}).get(ladder) for s in per_seed]
            if any(e is None for e in entries):
                cells.append("")
                continue
            made = made or any(step["interval_made_here"] for e in entries for r in e["sizes"].values() for step in r)
            cells.append(f"{worst([e['n_0_1'] for e in entries])} / {worst([e['n_1_2'] for e in entries])}")
        lines.append(f"| `{key}`{'*' if made else ''} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="orl_faces")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="dataset.OPTION=VALUE")
    parser.add_argument("--sizes", default="10,20,40,80", help="sample counts for the latent metrics")
    parser.add_argument("--image-sizes", default="10,20,40,80", help="sample counts for the image metrics ('' for none)")
    parser.add_argument("--features", default="inception")
    parser.add_argument("--latent-metrics", default=",".join(LATENT))
    parser.add_argument("--image-metrics", default=",".join(IMAGE))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", help="JSON file for every value and interval")
    args = parser.parse_args(argv)

    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    image_sizes = sorted(int(s) for s in args.image_sizes.split(",") if s)
    latent_names = [m for m in args.latent_metrics.split(",") if m]
    image_names = [m for m in args.image_metrics.split(",") if m] if image_sizes else []
    config = RunConfig.from_sources(overrides={"dataset": args.dataset, "metrics": latent_names + image_names,
                                               "features": args.features, "samplers": [SamplerSpec("gaussian")],
                                               "figures": False},
                                    assignments=parse_assignments(tuple(args.assignments)))
    started = time.perf_counter()
    setup = prepare(config, quiet=True)
    metrics = build_metrics(setup.config)
    latent_metrics = [m for m in metrics if m.name in latent_names]
    image_metrics = [m for m in metrics if m.name in image_names]
    report: dict[str, Any] = {"dataset": args.dataset, "options": config.dataset_options, "sizes": sizes,
                              "image_sizes": image_sizes, "seeds": [], "latent": [], "image": []}
    for seed in range(args.seeds):
        report["seeds"].append(seed)
        t0 = time.perf_counter()
        report["latent"].append(measure(setup, latent_metrics, [c.key for m in latent_metrics for c in m.columns],
                                        sizes, max(sizes), seed, features=False))
        print(f"seed {seed}: latent metrics {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if image_metrics:
            t0 = time.perf_counter()
            report["image"].append(measure(setup, image_metrics, list(IMAGE_KEYS), image_sizes, max(image_sizes), seed,
                                           features=True))
            print(f"seed {seed}: image metrics {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    report["wall_s"] = time.perf_counter() - started
    lines = [f"{args.dataset}: smallest n separating steps 0 -> 1 / 1 -> 2 (largest over {args.seeds} seed(s)); "
             f"latent sizes {sizes}, base {report['latent'][0]['base']} ({report['latent'][0]['split']})", ""]
    lines += table(report["latent"], [c.key for m in latent_metrics for c in m.columns if c.detects], sizes)
    if report["image"]:
        lines += ["", f"image metrics ({args.features}), sizes {image_sizes}, base {report['image'][0]['base']}", ""]
        lines += table(report["image"], [k for k in IMAGE_KEYS if any(k in s["results"] for s in report["image"])],
                       image_sizes)
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
