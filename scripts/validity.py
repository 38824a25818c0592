"""Validity ladder: does the benchmark rank samplers in the published order?

Runs `aebench run` on a data set with the reference rows and the samplers gmm, correlated, gaussian and
uniform, then checks the FID order real < reconstructions < gmm <= correlated < gaussian < uniform
(Ghosh et al. 2020; we saw 24 < 182 < 216 < 268 < 327 < 421 on ORL with Inception at n=400),
that held-out latents hit every region at the calibration target, and that uniform hits ~0 at N=256.

    python scripts/validity.py --dataset orl_faces --n 400
    python scripts/validity.py --dataset fashion_mnist --set dataset.limit_train=10000 --n 400

Prints a table and exits 1 when the order breaks. Slow on a CPU with Inception (minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aebench.cli import main as aebench_main

ORDER = ["real_heldout", "reconstruction", "gmm", "correlated", "gaussian", "uniform"]


def fid_ladder(doc: dict) -> list[tuple[str, float]]:
    rows = {r["name"]: r for r in doc["references"] + doc["samplers"]}
    out = []
    for name in ORDER:
        row = rows.get(name) or rows.get("real_train" if name == "real_heldout" else name)
        out.append((name, row["metrics"]["fid"]["value"] if row and "fid" in row["metrics"] else float("nan")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="orl_faces")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--features", default="inception")
    parser.add_argument("--latent-dim", type=int)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--out", default="validity-out")
    args = parser.parse_args()
    argv = ["run", "--dataset", args.dataset, "--n", str(args.n), "--features", args.features,
            "--sampler", "gmm,correlated,gaussian,uniform", "--seeds", str(args.seeds), "--out", args.out,
            "--no-figures", "--force"]  # each ladder run replaces the previous one
    if args.latent_dim:
        argv += ["--latent-dim", str(args.latent_dim)]
    for s in args.set:
        argv += ["--set", s]
    rc = aebench_main(argv)
    doc = json.loads((Path(args.out) / "results.json").read_text())
    ladder = fid_ladder(doc)
    print(f"\nFID ladder on {args.dataset} ({doc['features']['extractor']}, n={args.n}, "
          f"n_real={doc['features']['n_real']} {doc['features']['reference']} images):")
    for name, fid in ladder:
        print(f"  {name:<15} {fid:8.1f}")
    values = [f for _, f in ladder]
    ok = all(a < b for a, b in zip(values[:3], values[1:3])) and values[2] <= values[3] + 1e-9 and \
        values[3] < values[4] < values[5]
    print("order real < recon < gmm <= correlated < gaussian < uniform:", "HOLDS" if ok else "BROKEN")
    for name, report in doc["regions"].items():
        print(f"  region {name:<10} held-out hit {report['heldout_rate']:.3f} (target {report['target']}), "
              f"self-consistency {report['self_consistency']}")
    uniform = next(r for r in doc["samplers"] if r["name"] == "uniform")
    hits = {k: round(v["value"], 3) for k, v in uniform["metrics"].items() if k.startswith("hit_")}
    print(f"  uniform hits at N={doc['model']['latent_dim']}: {hits}")
    return 0 if ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
