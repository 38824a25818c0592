"""The source post's scale on one machine: Fashion-MNIST's 60k training images, a model with N=256 latents,
then every stage of a benchmark timed with its peak resident memory, each in its own process.

    aebench train --dataset fashion_mnist --latent-dim 256            # once (minutes on a CPU)
    flock /tmp/aebench-heavy.lock python benchmarks/scale.py          # the table (several minutes)
    python benchmarks/scale.py --stages samplers --n 512,2048         # one stage, two sample counts
    python benchmarks/scale.py --stages samplers --samplers gmm       # one sampler

Stages (each a fresh Python process measured by `memory_run.measure`, so every peak starts clean):
- `encode`: every image (60k train + 10k held-out) through the encoder, no cache;
- `stats`: latent statistics of the 60k training latents;
- `regions`: fit, calibrate on the held-out latents and self-consistency check of each default region,
  on the first m training latents for each m in --n-train (how the setup grows with the data set);
- `samplers`: fit and sample (n of each count in --n) of every registered sampler, one process each,
  and the fit again on each m of --n-train;
- `run`: `aebench run --all --n N --features fast` (everything, figures included) per count in --n.

Not in CI: it needs the trained N=256 model and minutes of CPU. Prints a markdown table and writes
`<out>/scale.json`. Times on a shared machine are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from memory_run import measure  # noqa: E402

STAGES = ("encode", "stats", "regions", "samplers", "run")


def _context(args: argparse.Namespace):
    from aebench.caches.models import resolve_model
    from aebench.dataset import load_dataset
    from aebench.infra.device import resolve_device

    device = resolve_device("cpu")
    dataset = load_dataset(args.dataset, {}, cache_dir=None)
    model = resolve_model(dataset, latent_dim=args.latent_dim, device=device, train_if_missing=False, quiet=True)
    return dataset, model, device


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One stage in this process; returns its own timings."""
    import torch

    from aebench.infra.threads import thread_limit

    with thread_limit(args.threads):
        dataset, model, device = _context(args)
        stage = args.child
        if stage == "encode":
            from aebench.models.encoding import encode_images

            t0 = time.perf_counter()
            latents = encode_images(model.module, dataset.images, batch_size=256, device=device)
            return {"encode_s": time.perf_counter() - t0, "images": int(latents.shape[0])}
        from aebench.caches.latents import encoded_latents, latent_stats

        train, heldout = encoded_latents(model, dataset, device=device)
        if args.m_child:
            train = train[:args.m_child]
        if stage == "stats":
            from aebench.stats import compute_stats

            t0 = time.perf_counter()
            compute_stats(train)
            return {"stats_s": time.perf_counter() - t0, "latents": int(train.shape[0])}
        stats = latent_stats(model, dataset, device=device)
        if args.m_child:
            from aebench.stats import compute_stats

            stats = compute_stats(train)
        if stage == "regions":
            from aebench.plugins import get_registry
            from aebench.run.config import DEFAULT_REGIONS

            out = {}
            for name in DEFAULT_REGIONS:
                region = get_registry("region").get(name)()
                t0 = time.perf_counter()
                region.fit(train, stats)
                t1 = time.perf_counter()
                region.calibrate(heldout, 0.95)
                t2 = time.perf_counter()
                points = region.sample_model(2000, torch.Generator().manual_seed(12345))
                if points is not None:
                    region.contains(points)
                out[name] = {"fit_s": t1 - t0, "calibrate_s": t2 - t1, "self_consistency_s": time.perf_counter() - t2}
            return {"n_train": int(train.shape[0]), **out}
        if stage.startswith("sampler:"):
            from aebench.plugins import get_registry

            sampler = get_registry("sampler").get(stage.split(":", 1)[1])()
            t0 = time.perf_counter()
            sampler.fit(train, stats)
            t1 = time.perf_counter()
            sampler.sample(args.n_child, torch.Generator().manual_seed(0))
            return {"fit_s": t1 - t0, "sample_s": time.perf_counter() - t1, "n": args.n_child,
                    "n_train": int(train.shape[0])}
    raise SystemExit(f"unknown stage {stage}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--latent-dim", type=int, default=256)
    parser.add_argument("--n", default="2048", help="comma-separated sample counts for samplers and run")
    parser.add_argument("--n-train", default="", help="comma-separated training-latent counts for the regions and "
                                                      "sampler fits (default: all of them only)")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--samplers", default="", help="comma-separated samplers for the samplers stage "
                        "(default: every registered one)")
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n-child", type=int, default=2048, help=argparse.SUPPRESS)
    parser.add_argument("--m-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("SCALE " + json.dumps(child(args)), flush=True)
        return 0

    counts = [int(x) for x in args.n.split(",") if x.strip()]
    subsets = [int(x) for x in args.n_train.split(",") if x.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    rows: list[dict[str, Any]] = []

    def run_child(label: str, stage: str, n: int = 2048, m: int = 0) -> None:
        log = args.out / f"{label.replace(':', '_').replace(' ', '_')}.log"
        cmd = [sys.executable, __file__, "--child", stage, "--n-child", str(n), "--m-child", str(m), "--dataset", args.dataset,
               "--latent-dim", str(args.latent_dim), "--threads", str(args.threads)]
        with open(log, "w") as fh:
            result = measure(cmd, env, fh)
        detail = {}
        for line in log.read_text().splitlines():
            if line.startswith("SCALE "):
                detail = json.loads(line[6:])
        rows.append({"stage": label, **result, "detail": detail})
        print(json.dumps(rows[-1]), flush=True)

    for stage in stages:
        if stage in ("encode", "stats"):
            run_child(stage, stage)
        elif stage == "regions":
            run_child(stage, stage)
            for m in subsets:
                run_child(f"regions n_train={m}", stage, m=m)
        elif stage == "samplers":
            from aebench.sampler import available_samplers

            wanted = [x.strip() for x in args.samplers.split(",") if x.strip()]
            for name in wanted or available_samplers():
                for n in counts:
                    run_child(f"sampler:{name} n={n}", f"sampler:{name}", n)
                for m in subsets:
                    run_child(f"sampler:{name} n_train={m}", f"sampler:{name}", counts[-1], m)
        elif stage == "run":
            for n in counts:
                out = args.out / f"run-n{n}"
                cmd = [sys.executable, "-c", "import sys; from aebench.cli import main; sys.exit(main())", "run",
                       "--dataset", args.dataset, "--latent-dim",
                       str(args.latent_dim), "--all", "--n", str(n), "--features", "fast", "--quiet",
                       "--threads", str(args.threads), "--out", str(out)]
                with open(args.out / f"run-n{n}.log", "w") as fh:
                    result = measure(cmd, env, fh)
                doc = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
                per = {r["name"]: r.get("timing", {}) for r in doc.get("samplers", [])}
                rows.append({"stage": f"run --all --n {n} --features fast", **result, "detail": per})
                print(json.dumps(rows[-1]), flush=True)
        else:
            raise SystemExit(f"unknown stage {stage}; use {', '.join(STAGES)}")
    (args.out / "scale.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print("\n| stage | wall s | CPU s | peak MiB |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['stage']} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['peak_mb']:.0f} |")
    return int(any(r["rc"] != 0 for r in rows))


if __name__ == "__main__":
    sys.exit(main())
