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
from aebench.io import atomic_path
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
    """Histograms of the `top` components with the largest root mean square (the seed's part II).

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
