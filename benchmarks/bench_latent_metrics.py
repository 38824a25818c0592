"""A cell's latent-space metrics at the default `--n-latent` (4096 points): region hits (box, ellipsoid,
k-NN, density), latent coverage, nearest-training distance, latent_fd, latent_mmd, latent_1nn and
latent_copies, interval repeats included, with the real side cached (how a run scores every cell after
the first). Latents shaped like a data set's (synthetic, decaying spectrum): orl_faces 320 training / 80
held-out x N=64; the full preset adds fashion_mnist 20,000 / 10,000 x N=32.

Baseline, in the same run: the same metrics with `latent_mmd` as aebench computed it before the subset
sums (the samples' whole kernel matrix, one gathered sub-matrix per random half, four exps per kernel
entry), which was most of a cell's time. Values and intervals must agree to 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import MODE, ratio, record, run_ours, spectrum_data, time_call

from aebench.maths.bootstrap import half_sample_sd
from aebench.metric import FakeSide, MetricValue, RealSide
from aebench.metrics.distribution import LatentMMD, _interval, is_heldout_set
from aebench.metrics.latent import _check_latents
from aebench.plugins import get_registry
from aebench.stats import compute_stats

N_LATENT = 4096
SHAPES = {"orl_faces": (320, 80, 64)} if MODE == "quick" else {"orl_faces": (320, 80, 64),
                                                                "fashion_mnist": (20000, 10000, 32)}
METRICS = ("region_hits", "latent_coverage", "latent_distance", "latent_fd", "latent_mmd", "latent_1nn",
           "latent_copies")
REGIONS = ("box", "ellipsoid", "knn", "density")


class GatheredLatentMMD(LatentMMD):
    """latent_mmd before the subset sums: kernel(z, z) whole (below 256 MB), and per random half the
    gathered sub-matrix's sum."""

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name).to(torch.float64)
        if is_heldout_set(z, real):
            return {}
        n = int(z.shape[0])
        kernel, median, xx = self._reference(real)
        h = kernel.bandwidths
        held = real.heldout_latents.to(torch.float64)

        def gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # the old kernel: four exps per entry
            c = b.mean(0)
            a, b = a - c, b - c
            d2 = (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2.0 * (a @ b.T)).clamp_min_(0)
            return sum(torch.exp(d2 / (-2.0 * w * w)) for w in h) / len(h)

        cross = torch.cat([gram(z[s:s + 1024], held).mean(1) for s in range(0, n, 1024)])
        k = gram(z, z)

        def mmd(rows: torch.Tensor | None) -> float:
            if rows is None:
                return xx + float((k.sum() - n) / (n * (n - 1))) - 2.0 * float(cross.mean())
            m = rows.shape[0]
            return xx + float((k[rows][:, rows].sum() - m) / (m * (m - 1))) - 2.0 * float(cross[rows].mean())

        value = mmd(None)
        low, high = _interval(value, half_sample_sd(mmd, n, self.options.repeats, fake.seed))
        return {"latent_mmd": MetricValue(value, False, low, high, n, {})}


def real_side(n_train: int, n_heldout: int, dim: int) -> RealSide:
    train = torch.from_numpy(spectrum_data(n_train, dim, 1))
    held = torch.from_numpy(spectrum_data(n_heldout, dim, 2))
    stats = compute_stats(train)
    regions = {}
    for name in REGIONS:
        region = get_registry("region").get(name)()
        region.fit(train, stats)
        region.calibrate(held, 0.95)
        regions[name] = region
    return RealSide(train, held, stats, regions=regions, seed=0)


def score_all(metrics, fake_of, real) -> dict[str, MetricValue]:
    out: dict[str, MetricValue] = {}
    for metric in metrics:
        out.update(metric.compute(fake_of(), real))  # a fresh FakeSide: no per-sample work carried over
    return out


@pytest.mark.parametrize("shape", list(SHAPES))
def bench_latent_metrics_cell(benchmark, shape):
    n_train, n_heldout, dim = SHAPES[shape]
    real = real_side(n_train, n_heldout, dim)
    z = torch.from_numpy(spectrum_data(N_LATENT, dim, 3, scale=1.1, shift=0.02))
    registry = get_registry("metric")
    ours = [registry.get(name)() for name in METRICS]
    old = [GatheredLatentMMD() if m.name == "latent_mmd" else m for m in ours]

    def fake() -> FakeSide:
        return FakeSide("s", z, seed=1)

    score_all(ours, fake, real)  # the real side's one-off work (k-NN radii, kernel terms), as after a run's first cell
    base_s, want = time_call(lambda: score_all(old, fake, real), 1)
    ours_s, got = run_ours(benchmark, lambda: score_all(ours, fake, real), 2)
    for key, value in want.items():
        assert got[key].value == pytest.approx(value.value, rel=1e-9, abs=1e-15), key
        if value.low is not None:
            assert got[key].low == pytest.approx(value.low, rel=1e-9, abs=1e-15), key
    # what each metric costs now, and the same cell at the old default count (n = 128, decoded and latent)
    parts = {m.name: time_call(lambda m=m: m.compute(fake(), real), 1)[0] for m in ours}
    small = torch.from_numpy(spectrum_data(128, dim, 3, scale=1.1, shift=0.02))
    small_s, _ = time_call(lambda: score_all(ours, lambda: FakeSide("s", small, seed=1), real), 2)
    record(benchmark, f"latent metrics cell {shape}", n_latent=N_LATENT, n_train=n_train, n_heldout=n_heldout, dim=dim,
           aebench_s=ours_s, gathered_mmd_baseline_s=base_s, speedup_per_sampler=ratio(base_s, ours_s),
           at_n128_s=small_s, **{f"{name}_s": s for name, s in parts.items()},
           fd_value=float(np.round(got["latent_fd"].value, 6)))
