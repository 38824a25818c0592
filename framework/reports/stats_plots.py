"""PNG pictures of latent statistics: per-component value distributions and the correlation matrix.

Uses matplotlib's object API (Figure + Agg canvas), never pyplot, so no display or global backend is
touched and figures are freed as soon as they are written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aebench.errors import AebenchError
from aebench.infra.io import atomic_path
from aebench.reports.figures import SCATTER_SEED
from aebench.stats import LatentStats


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def _quantile(stats: LatentStats, level: float) -> torch.Tensor:
    idx = int(torch.argmin((stats.quantile_levels - level).abs()))
    return stats.quantiles[idx]


def plot_dominant_histograms(latents: torch.Tensor, stats: LatentStats, path: str | Path, top: int = 12,
                             bins: int = 40) -> Path:
    """Histograms of the `top` components with the largest root mean square (the source post's part II).

    Flagged dominant components are drawn in colour, the others in grey; dashed lines mark the 5% and
    95% quantiles, the solid line the mean, the dotted line zero.
    """
    if latents.ndim != 2 or latents.shape[1] != stats.latent_dim:
        raise AebenchError(f"Latents of shape {tuple(latents.shape)} do not match statistics with N={stats.latent_dim}; "
                           f"plot the latents the statistics were computed from.")
    z = latents.detach().to("cpu", torch.float64).numpy()
    order = stats.dominance_order[:max(1, min(top, stats.latent_dim))].tolist()
    flagged = set(stats.dominant.tolist())
    q05, q95 = _quantile(stats, 0.05), _quantile(stats, 0.95)
    cols = min(4, len(order))
    rows = math.ceil(len(order) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.5 * rows + 0.6), layout="constrained")
    for k, comp in enumerate(order):
        ax = fig.add_subplot(rows, cols, k + 1)
        colour = "tab:blue" if comp in flagged else "0.6"
        ax.hist(z[:, comp], bins=bins, color=colour, alpha=0.85)
        ax.axvline(float(stats.mean[comp]), color="k", lw=1)
        ax.axvline(float(q05[comp]), color="k", lw=0.8, ls="--")
        ax.axvline(float(q95[comp]), color="k", lw=0.8, ls="--")
        ax.axvline(0.0, color="tab:red", lw=0.8, ls=":")
        ax.set_title(f"z[{comp}]" + (" (dominant)" if comp in flagged else ""), fontsize=9)
        ax.set_xlabel(f"value of z[{comp}]", fontsize=7)
        if k % cols == 0:
            ax.set_ylabel("training latents", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Value distributions of the most dominant of N={stats.latent_dim} latent components "
                 f"({z.shape[0]} training latents, by root mean square)", fontsize=10)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return _save(fig, path)


def _legend_handles() -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [Patch(color="tab:blue", alpha=0.85, label="flagged dominant component"),
            Patch(color="0.6", alpha=0.85, label="other component"),
            Line2D([], [], color="k", lw=1, label="mean"),
            Line2D([], [], color="k", lw=0.8, ls="--", label="5% and 95% quantiles"),
            Line2D([], [], color="tab:red", lw=0.8, ls=":", label="zero")]


def plot_correlation_matrix(stats: LatentStats, path: str | Path) -> Path:
    """The N x N correlation matrix of the training latents (blue negative, red positive)."""
    corr = stats.corr.detach().to("cpu", torch.float64).numpy()
    side = min(9.0, 3.0 + corr.shape[0] / 16)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="correlation")
    off = np.abs(corr[~np.eye(corr.shape[0], dtype=bool)]) if corr.shape[0] > 1 else np.zeros(1)
    ax.set_title(f"Latent correlations, N={corr.shape[0]} (mean |r| off-diagonal {off.mean():.2f})", fontsize=10)
    ax.set_xlabel("component")
    ax.set_ylabel("component")
    return _save(fig, path)


def plot_radius_histogram(radii: dict[str, np.ndarray], dof: int, path: str | Path, bins: int = 40) -> Path:
    """Histograms of Mahalanobis radii (training latents, their trimmed core, held-out latents) against the
    chi density with `dof` degrees of freedom: what the radii of a Gaussian would look like."""
    from scipy.stats import chi

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    colours = {"train": "tab:blue", "core": "tab:green", "heldout": "tab:orange"}
    labels = {"train": "training latents", "core": "trimmed core", "heldout": "held-out latents"}
    top = max(float(np.max(r)) for r in radii.values() if len(r))
    edges = np.linspace(0, max(top, float(chi.ppf(0.999, dof))) * 1.02, bins + 1)
    for name, r in radii.items():
        if len(r):
            ax.hist(r, bins=edges.tolist(), density=True, histtype="step", lw=1.5, color=colours.get(name),
                    label=f"{labels.get(name, name)} (n={len(r)})")
    grid = np.linspace(0, edges[-1], 400)
    ax.plot(grid, chi.pdf(grid, dof), color="k", lw=1.2, ls="--", label=f"chi, {dof} degrees of freedom")
    ax.set_xlabel("Mahalanobis radius in the principal subspace")
    ax.set_ylabel("density")
    ax.set_title(f"Mahalanobis radii against the chi distribution (d={dof})", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pair_ellipses(latents: torch.Tensor, rows: list[dict], path: str | Path, max_points: int = 3000) -> Path:
    """Scatter plots of dominant component pairs with the 1, 2 and 3 sigma ellipses of each pair's 2-D
    Gaussian fit; each legend gives the share of points inside against a Gaussian's."""
    z = latents.detach().to("cpu", torch.float64).numpy()
    if len(z) > max_points:
        z = z[np.random.default_rng(SCATTER_SEED).choice(len(z), max_points, replace=False)]
    cols = min(3, max(1, len(rows)))
    nrows = math.ceil(len(rows) / cols) if rows else 1
    fig = Figure(figsize=(4.0 * cols, 3.6 * nrows), layout="constrained")
    theta = np.linspace(0, 2 * np.pi, 200)
    for k, row in enumerate(rows):
        i, j = row["pair"]
        ax = fig.add_subplot(nrows, cols, k + 1)
        xy = z[:, [i, j]]
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.4, color="tab:blue", label="latents")
        mean, cov = xy.mean(0), np.cov(xy, rowvar=False)
        evals, evecs = np.linalg.eigh(cov)
        circle = np.stack([np.cos(theta), np.sin(theta)])
        for sigma, style in zip((1, 2, 3), ("-", "--", ":")):
            pts = mean[:, None] + evecs @ (np.sqrt(np.clip(evals, 0, None))[:, None] * sigma * circle)
            inside, gauss = row["inside"][str(sigma)], row["gaussian"][str(sigma)]
            ax.plot(pts[0], pts[1], color="tab:red", ls=style, lw=1.2,
                    label=f"{sigma}σ: {inside:.1%} inside (Gaussian {gauss:.1%})")
        ax.set_xlabel(f"z[{i}]")
        ax.set_ylabel(f"z[{j}]")
        ax.set_title(f"z[{i}] vs z[{j}] (r = {row['correlation']:+.2f})", fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle("Dominant component pairs with their 1, 2 and 3 sigma confidence ellipses", fontsize=10)
    return _save(fig, path)


def plot_component_qq(coords: torch.Tensor, core: torch.Tensor, path: str | Path, top: int = 6) -> Path:
    """Normal Q-Q plots of the leading principal components (all points and the trimmed core),
    standardised: points on the diagonal are Gaussian."""
    from scipy.stats import norm

    x = coords.detach().to("cpu", torch.float64).numpy()
    keep = core.detach().to("cpu").numpy().astype(bool)
    count = max(1, min(top, x.shape[1]))
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(3.6 * cols, 3.2 * rows), layout="constrained")
    for c in range(count):
        ax = fig.add_subplot(rows, cols, c + 1)
        for values, colour, label in ((x[:, c], "tab:blue", "all latents"), (x[keep, c], "tab:green", "trimmed core")):
            v = np.sort((values - values.mean()) / max(values.std(), 1e-300))
            q = norm.ppf((np.arange(1, len(v) + 1) - 0.5) / len(v))
            ax.plot(q, v, ".", ms=2, color=colour, label=label)
        lim = 4.0
        ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8, label="Gaussian")
        ax.set_xlabel("normal quantile")
        ax.set_ylabel("standardised value")
        ax.set_title(f"principal component {c}", fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle("Normal Q-Q plots of the leading principal components", fontsize=10)
    return _save(fig, path)
