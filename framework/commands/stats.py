"""`aebench stats`: encode the training set, store its latent statistics beside the model, and show them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import torch
from rich.table import Table

from aebench.cli import cli
from aebench.commands.shared_options import MODEL_HELP, old_spelling
from aebench.errors import OptionError
from aebench.infra.console import console
from aebench.run.config import model_source
from aebench.stats import LatentStats


def _quantile(stats: LatentStats, level: float) -> torch.Tensor:
    return stats.quantiles[int(torch.argmin((stats.quantile_levels - level).abs()))]


def component_rows(stats: LatentStats, top: int) -> list[dict[str, Any]]:
    """The `top` components by root mean square, with their per-component summary."""
    q05, q95 = _quantile(stats, 0.05), _quantile(stats, 0.95)
    flagged = set(stats.dominant.tolist())
    return [{"component": c, "dominant": c in flagged, "rms": float(stats.dominance[c]), "mean": float(stats.mean[c]),
             "std": float(stats.std[c]), "min": float(stats.min[c]), "max": float(stats.max[c]),
             "q05": float(q05[c]), "q95": float(q95[c])}
            for c in stats.dominance_order[:top].tolist()]


def pca_rows(stats: LatentStats, top: int) -> list[dict[str, Any]]:
    """Variance along the `top` principal axes: absolute, share of the total and cumulative share."""
    ratio = stats.pca_ratio
    cumulative = torch.cumsum(ratio, 0)
    return [{"axis": i, "variance": float(stats.pca_variance[i]), "ratio": float(ratio[i]),
             "cumulative": float(cumulative[i])} for i in range(min(top, stats.latent_dim))]


def pair_rows(stats: LatentStats, top: int) -> list[dict[str, Any]]:
    return [{"i": int(i), "j": int(j), "corr": float(r)}
            for (i, j), r in zip(stats.pairs[:top].tolist(), stats.pair_corr[:top].tolist())]


def centre_summary(stats: LatentStats) -> dict[str, Any]:
    """How far the region's centre sits from the origin, against the region's own spread."""
    spread = math.sqrt(float(stats.cov.diagonal().sum()))
    cumulative = torch.cumsum(stats.pca_ratio, 0)
    return {"norm": stats.centre_norm, "spread_radius": spread,
            "norm_over_spread": stats.centre_norm / spread if spread > 0 else float("inf"),
            "axes_for_90pct_variance": int((cumulative < 0.9).sum()) + 1,
            "axes_for_99pct_variance": min(stats.latent_dim, int((cumulative < 0.99).sum()) + 1),
            "condition_number": stats.condition_number}


def _dataset_options(assignments: tuple[str, ...]) -> dict[str, str]:
    from aebench.options import parse_assignments

    return parse_assignments(assignments, owners=("dataset",)).get("dataset", {})


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", min_width=len(title) + 2)  # keep the title on one line
    for col in columns:
        table.add_column(col, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_stats(stats: LatentStats, doc: dict[str, Any]) -> None:
    c = doc["centre"]
    console.print(f"[bold]Latent statistics[/bold] of {stats.n} training latents, N={stats.latent_dim} "
                  f"({doc['source']})")
    console.print(f"centre distance from origin {c['norm']:.4g}; spread radius sqrt(trace cov) {c['spread_radius']:.4g} "
                  f"(ratio {c['norm_over_spread']:.3g}); condition number {c['condition_number']:.3g}; "
                  f"{c['axes_for_90pct_variance']} / {c['axes_for_99pct_variance']} principal axes hold 90% / 99% "
                  f"of the variance; {len(stats.dominant)} dominant components")
    console.print(_table("Dominant components (by root mean square; * = flagged dominant)",
                         ["comp", "rms", "mean", "std", "min", "q05", "q95", "max"],
                         [[f"{r['component']}{'*' if r['dominant'] else ''}"] +
                          [f"{r[k]:.3g}" for k in ("rms", "mean", "std", "min", "q05", "q95", "max")]
                          for r in doc["components"]]))
    console.print(_table("Explained variance of the principal axes", ["axis", "variance", "share", "cumulative"],
                         [[str(r["axis"]), f"{r['variance']:.4g}", f"{r['ratio']:.2%}", f"{r['cumulative']:.2%}"]
                          for r in doc["pca"]]))
    console.print(_table("Most strongly correlated pairs", ["i", "j", "correlation"],
                         [[str(r["i"]), str(r["j"]), f"{r['corr']:+.3f}"] for r in doc["pairs"]]))


def normality_section(train: torch.Tensor, heldout: torch.Tensor | None, stats: LatentStats, out_dir: Path, stem: str, *,
                      top: int, pairs: int, trim_level: float, figures: dict[str, str]) -> dict[str, Any]:
    """Run the normality analysis, write its PNGs (their paths go into `figures`) and return its report."""
    from aebench.maths.normality import analyse
    from aebench.reports.stats_plots import plot_component_qq, plot_pair_ellipses, plot_radius_histogram

    report, arrays = analyse(train, stats, heldout=heldout, top=top, pairs=pairs, trim_level=trim_level)
    radii = {"train": arrays["radii_train"], "core": arrays["radii_core"]}
    if "radii_heldout" in arrays:
        radii["heldout"] = arrays["radii_heldout"]
    figures["radii"] = str(plot_radius_histogram(radii, arrays["dof"], out_dir / f"{stem}-radii.png"))
    figures["ellipses"] = str(plot_pair_ellipses(arrays["latents"], report["ellipses"], out_dir / f"{stem}-ellipses.png"))
    figures["qq"] = str(plot_component_qq(arrays["coords"], arrays["core"], out_dir / f"{stem}-qq.png", top=min(top, 6)))
    return report


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def print_normality(doc: dict[str, Any]) -> None:
    sub, core = doc["subspace"], doc["core"]
    console.print(f"[bold]Normality[/bold] in the principal subspace of {sub['dims']} of {sub['latent_dim']} dimensions "
                  f"({sub['variance_share']:.1%} of the variance); trimmed core: {core['core_kept']} of "
                  f"{core['core_total']} latents ({core['core_share']:.1%}) within the {core['trim_level']} chi2 quantile "
                  f"after {core['trim_iterations']} rounds")
    console.print(_table("Principal components: skewness, excess kurtosis, D'Agostino-Pearson p (p < 0.05: not normal)",
                         ["pc", "var share", "skew", "ex. kurt", "p all", "p core"],
                         [[str(r["component"]), f"{r['variance_share']:.1%}", f"{r['skewness']:+.2f}",
                           f"{r['excess_kurtosis']:+.2f}", _p(r["p_all"]), _p(r["p_core"])] for r in doc["components"]]))
    rows = []
    for name, m in doc["mardia"].items():
        if "error" in m:
            rows.append([name, "-", "-", "-", "-", "-", m["error"]])
            continue
        rows.append([name, str(m["n"]), f"{m['skewness']:.3g}", _p(m["skewness_p"]), f"{m['kurtosis']:.4g}",
                     f"{m['kurtosis_expected']:.4g}", _p(m["kurtosis_p"])])
    console.print(_table(f"Mardia's multivariate normality tests (at most {doc['mardia_max_points']} points)",
                         ["set", "n", "skewness b1", "p", "kurtosis b2", "Gaussian b2", "p"], rows))
    rows = []
    for name, r in doc["radii"].items():
        med = r["quantiles"][r["levels"].index(0.5)]
        q95 = r["quantiles"][r["levels"].index(0.95)]
        rows.append([name, str(r["n"]), f"{med:.3g}", f"{r['chi_quantiles'][r['levels'].index(0.5)]:.3g}", f"{q95:.3g}",
                     f"{r['chi_quantiles'][r['levels'].index(0.95)]:.3g}", f"{r['ks_distance']:.3f}"])
    console.print(_table(f"Mahalanobis radii against chi with {doc['subspace']['dims']} degrees of freedom",
                         ["set", "n", "median", "chi median", "95%", "chi 95%", "KS distance"], rows))
    console.print(_table("Share inside the 1, 2, 3 sigma ellipses of dominant pairs (Gaussian: 39.3%, 86.5%, 98.9%)",
                         ["pair", "r", "1σ", "2σ", "3σ"],
                         [[f"{e['pair'][0]}, {e['pair'][1]}", f"{e['correlation']:+.2f}"] +
                          [f"{e['inside'][k]:.1%}" for k in ("1", "2", "3")] for e in doc["ellipses"]]))


@cli.command("stats")
@click.option("--dataset", default="orl_faces", show_default=True, help="Registered data set; see `aebench datasets`.")
@click.option("--set", "assignments", multiple=True, metavar="dataset.OPTION=VALUE",
              help="A data set option (repeatable; a list is comma-separated).")
@click.option("--checkpoint", "--model-checkpoint", "checkpoint", type=click.Path(dir_okay=False),
              help="A trained aebench checkpoint (default: the cached model for the data set, trained if absent).")
@click.option("--model", "model_spec", metavar="CKPT|MODULE:FACTORY", help=MODEL_HELP)
@click.option("--train-latents", type=click.Path(dir_okay=False), help="Training latents (.npy or .safetensors) instead of a model.")
@click.option("--heldout-latents", type=click.Path(dir_okay=False), help="Held-out latents, with --train-latents.")
@click.option("--latent-dim", type=int, help="Latent dimension of the cached model (default: per data set).")
@click.option("--model-seed", "seed", type=int, default=0, show_default=True, help="Training seed of the cached model.")
@old_spelling("--seed", "--seed is the first sampling seed of `aebench run`; the cached model's training seed is "
                        "--model-seed N.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache folder (default: $AEBENCH_CACHE_DIR or the user cache).")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the PNGs (default: beside the statistics file).")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Rows per table and panels in the histogram figure.")
@click.option("--normality/--no-normality", default=True, show_default=True,
              help="Normality analysis: per-component and Mardia tests, radii against chi, sigma ellipses of dominant pairs.")
@click.option("--trim-level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.997, show_default=True,
              help="The trimmed core keeps latents within this chi2 quantile of its own fit (0.997: about 3 sigma).")
@click.option("--pairs", type=click.IntRange(1), default=6, show_default=True, help="Dominant component pairs for the sigma ellipses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (LatentStats.to_dict() plus the tables) instead of tables.")
def stats_command(dataset, assignments, checkpoint, model_spec, train_latents, heldout_latents, latent_dim, seed,
                  device, cache_dir, out, top, normality, trim_level, pairs, as_json) -> None:
    """Encode the training set and summarise the latent region: dominant components, centre, PCA, correlations,
    and how Gaussian it is (normality tests, Mahalanobis radii, sigma ellipses)."""
    from aebench.infra.device import resolve_device
    from aebench.infra.io import check_writable_dir
    from aebench.reports.stats_plots import plot_correlation_matrix, plot_dominant_histograms
    from aebench.stats import compute_stats, save_stats

    dev = resolve_device(device)
    if out:  # before any work: the figures (and latent-file statistics) go there
        check_writable_dir(out, "--out folder")
    if model_spec and model_source(model_spec) == "checkpoint":  # --model takes a checkpoint too, as in `aebench run`
        if checkpoint not in (None, model_spec):
            raise OptionError("Give either --checkpoint or --model, not both.")
        checkpoint, model_spec = model_spec, None
    if heldout_latents and not train_latents:
        raise OptionError("--heldout-latents needs --train-latents too.")
    if train_latents:
        from aebench.caches.latents import load_latent_arrays

        if checkpoint or model_spec:
            raise OptionError("Give either --train-latents/--heldout-latents or a model (--checkpoint / --model), not both.")
        train, heldout = load_latent_arrays(train_latents, heldout_latents)
        if not out:
            check_writable_dir(Path(train_latents).parent, "the folder of --train-latents (the statistics go there)")
        stats = compute_stats(train, meta={"source": "latent files", "train_latents": str(Path(train_latents).resolve()),
                                           "heldout_latents": str(Path(heldout_latents).resolve()),
                                           "n_heldout": int(heldout.shape[0])})
        stats_file = save_stats(stats, Path(out or Path(train_latents).parent) / f"{Path(train_latents).stem}-stats.safetensors")
        source = f"latents from {train_latents}"
    else:
        from aebench.caches.latents import encoded_latents, latent_stats, stats_path
        from aebench.caches.models import resolve_model
        from aebench.dataset import load_dataset

        ds = load_dataset(dataset, _dataset_options(assignments), cache_dir=cache_dir)
        model = resolve_model(ds, checkpoint=checkpoint, model_spec=model_spec, cache_dir=cache_dir, device=str(dev),
                              seed=seed, latent_dim=latent_dim, quiet=as_json)
        check_writable_dir(model.cache_dir, "the model's cache folder (the statistics go there)")
        train, heldout = encoded_latents(model, ds, device=dev)
        stats = latent_stats(model, ds, device=dev)
        stats_file = stats_path(model, ds)
        source = f"{ds.name} encoded by {model.path or model_spec or 'the model'} (checksum {str(model.checksum)[:12]})"

    out_dir = Path(out) if out else stats_file.parent
    figures = {
        "histograms": str(plot_dominant_histograms(train, stats, out_dir / f"{stats_file.stem}-dominant.png", top=top)),
        "correlation": str(plot_correlation_matrix(stats, out_dir / f"{stats_file.stem}-correlation.png")),
    }
    doc: dict[str, Any] = {"source": source, "stats_file": str(stats_file), "figures": figures, "stats": stats.to_dict(),
           "centre": centre_summary(stats), "components": component_rows(stats, top), "pca": pca_rows(stats, top),
           "pairs": pair_rows(stats, top), "meta": stats.meta}
    if normality:
        doc["normality"] = normality_section(train, heldout, stats, out_dir, stats_file.stem, top=top, pairs=pairs,
                                             trim_level=trim_level, figures=figures)
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    print_stats(stats, doc)
    if normality:
        print_normality(doc["normality"])
    console.print(f"Statistics: {stats_file}")
    console.print(f"Histograms: {figures['histograms']}")
    console.print(f"Correlations: {figures['correlation']}")
    for key, label in (("radii", "Radii vs chi"), ("ellipses", "Sigma ellipses"), ("qq", "Q-Q plots")):
        if key in figures:
            console.print(f"{label}: {figures[key]}")
