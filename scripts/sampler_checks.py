"""Where do samplers land on a real model? Region-hit rates and the latent Fréchet distance to held-out latents.

    python scripts/sampler_checks.py --dataset orl_faces --latent-dim 256 correlated elliptic "correlated:covariance=full"
    python scripts/sampler_checks.py --dataset fashion_mnist --set dataset.limit_train=20000 --json

Uses the cached model of the data set (trained on demand, like `aebench run`), fits the regions on the
training latents and calibrates them on the held-out latents (as a run does), then for every sampler
(`name` or `name:option=value,option=value`): fit time, the share of `--n` samples inside each region,
and the Fréchet distance between Gaussian fits of the samples and of the held-out latents (aebench.maths.fid;
lower is better). This is the check behind the samplers' measured claims (README, Samplers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

DEFAULT = ("correlated", "correlated:covariance=full", "elliptic", "elliptic:core=trimmed", "gmm")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    options = dict(item.split("=", 1) for item in rest.split(",") if item) if rest else {}
    return name, options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samplers", nargs="*", default=list(DEFAULT))
    parser.add_argument("--dataset", default="orl_faces")
    parser.add_argument("--set", dest="assignments", action="append", default=[], help="dataset.OPTION=VALUE")
    parser.add_argument("--latent-dim", type=int, default=None)
    parser.add_argument("--n", type=int, default=2000, help="samples per sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--regions", default="ellipsoid,density,box,knn")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from aebench.caches.latents import encoded_latents, latent_stats
    from aebench.caches.models import resolve_model
    from aebench.dataset import load_dataset
    from aebench.maths.fid import frechet_distance, mean_cov
    from aebench.options import parse_assignments
    from aebench.plugins import get_registry

    ds = load_dataset(args.dataset, parse_assignments(args.assignments, owners=("dataset",)).get("dataset", {}))
    model = resolve_model(ds, latent_dim=args.latent_dim, device="cpu", quiet=args.json)
    train, heldout = encoded_latents(model, ds, device="cpu")
    stats = latent_stats(model, ds, device="cpu")
    regions = {}
    for name in args.regions.split(","):
        region = get_registry("region").get(name)().fit(train, stats)
        region.calibrate(heldout)
        regions[name] = region
    mu_h, cov_h = mean_cov(heldout)
    rows = [{"sampler": "held-out latents", "hits": {k: float(r.contains(heldout).double().mean()) for k, r in regions.items()},
             "latent_fd": 0.0, "fit_s": 0.0}]
    for spec in args.samplers:
        name, options = parse_spec(spec)
        t0 = time.perf_counter()
        sampler = get_registry("sampler").get(name)(options).fit(train, stats)
        fit_s = time.perf_counter() - t0
        z = sampler.sample(args.n, torch.Generator().manual_seed(args.seed)).latents
        mu, cov = mean_cov(z)
        rows.append({"sampler": spec, "hits": {k: float(r.contains(z).double().mean()) for k, r in regions.items()},
                     "latent_fd": float(frechet_distance(mu_h, cov_h, mu, cov)), "fit_s": fit_s,
                     "fit_info": sampler.fit_info})
    doc = {"dataset": ds.name, "latent_dim": model.latent_dim, "n_train": int(train.shape[0]),
           "n_heldout": int(heldout.shape[0]), "n": args.n, "seed": args.seed, "rows": rows}
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"{ds.name}, N={model.latent_dim}: {doc['n_train']} training / {doc['n_heldout']} held-out latents, "
          f"{args.n} samples each; hit rates of regions calibrated to 95% of held-out latents")
    names = list(regions)
    print(f"{'sampler':34s} " + " ".join(f"{n:>9s}" for n in names) + f" {'latent FD':>10s} {'fit s':>7s}")
    for r in rows:
        print(f"{r['sampler']:34s} " + " ".join(f"{r['hits'][n]:9.3f}" for n in names) +
              f" {r['latent_fd']:10.2f} {r['fit_s']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
