"""`aebench validate`: do the selected metrics see known degradations of this model's real latents?"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from aebench.cli import cli
from aebench.commands.shared_options import model_overrides, model_source_options, split_list
from aebench.infra.console import console, err_console
from aebench.metric import LADDERS


@cli.command("validate")
@model_source_options
@click.option("--set", "assignments", multiple=True, metavar="NAME.OPTION=VALUE",
              help="Set an option of a region, metric, the extractor or the data set (repeatable).")
@click.option("--metrics", multiple=True, help="Metrics to validate (default: those of `aebench run`). See `aebench plugins`.")
@click.option("--regions", multiple=True, help="Regions for the hit-rate metrics (default: box,ellipsoid,knn,density).")
@click.option("--features", help="Feature extractor for image metrics (default: inception).")
@click.option("--n-real", type=int, help="At most this many real reference images (default 1000 on a CPU, 10000 on a GPU).")
@click.option("--n", type=int, help="The run's sample count: sizes the decoder-matched reference and the default --size.")
@click.option("--size", type=int, help="Real latents per ladder step (default: --n, at most half the usable held-out latents).")
@click.option("--steps", type=int, help="Steps per ladder, step 0 included (default 6).")
@click.option("--ladders", multiple=True, help=f"Ladders to run (default all: {', '.join(LADDERS)}).")
@click.option("--clusters", type=int, help="k-means clusters for the mode-dropping ladder (default 8).")
@click.option("--seed", type=int, help="Seed for the base set, replacements and clusters (default 0).")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=int, help="Batch size for decoding and features (default 128).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default ./aebench-out).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache folder (default: $AEBENCH_CACHE_DIR or the user cache).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file (data, model, metrics, [validation]).")
@click.option("--json", "as_json", is_flag=True, help="Print the validation section as JSON instead of the table.")
@click.option("--strict", is_flag=True, help="Exit 1 when a headline metric is not trusted or a ladder is uncovered (for CI).")
@click.option("--no-figures", is_flag=True, help="Skip the plot.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def validate_command(dataset, model, checkpoint, train_latents, heldout_latents, assignments, metrics, regions, features,
                     n_real, n, size, steps, ladders, clusters, seed, device, batch_size, out, cache_dir, config_path,
                     as_json, strict, no_figures, quiet) -> int:
    """Degrade real latents along known-answer ladders and check that every metric gets worse at each step;
    writes results.json (with a `validation` section), report.md, report.html and figures/validation.png."""
    from aebench.options import parse_assignments
    from aebench.reports.html import write_html
    from aebench.reports.markdown import write_markdown
    from aebench.reports.validation import render_validation_table
    from aebench.run.config import LATENT_METRICS, RunConfig
    from aebench.validation.run import validate_benchmark

    overrides: dict[str, Any] = {
        "dataset": dataset, "train_latents": train_latents, "heldout_latents": heldout_latents, "n": n,
        "features": features, "n_real": n_real, "device": device, "batch_size": batch_size, "out": out,
        "cache_dir": cache_dir, "metrics": split_list(metrics), "regions": split_list(regions),
    }
    overrides.update(model_overrides(model, checkpoint))
    if no_figures:
        overrides["figures"] = False
    if seed is not None:
        overrides["seeds"] = [seed]
    clear: tuple[str, ...] = ()
    if train_latents and dataset is None and config_path is None:
        clear = ("dataset",)
        if overrides["metrics"] is None:
            overrides["metrics"] = list(LATENT_METRICS)
    config = RunConfig.from_sources(config_path, overrides, parse_assignments(assignments), clear=clear)
    chosen = {"size": size, "steps": steps, "clusters": clusters, "ladders": split_list(ladders)}
    config.validation = {**(config.validation or {}), **{k: v for k, v in chosen.items() if v is not None}}

    started = time.perf_counter()
    doc = validate_benchmark(config, quiet=quiet or as_json)
    elapsed = time.perf_counter() - started
    out_dir = Path(config.out)
    write_markdown(doc, out_dir)
    html = write_html(doc, out_dir)
    section = doc["validation"]
    if as_json:
        click.echo(json.dumps(section, indent=2))
    else:
        table_console = console if console.is_terminal else Console(width=max(console.width, 100))
        render_validation_table(section, table_console)
        console.print(f"Results: {out_dir / 'results.json'}")
        console.print(f"Report:  {html}" + (f"; plot {out_dir / section['figure']}" if section.get("figure") else ""))
        console.print(f"[dim]Wall time {elapsed:.1f} s[/dim]")
    if strict:
        weak = [k for k, e in section["metrics"].items() if e.get("role") == "headline" and e.get("verdict") != "holds"]
        if weak or section["uncovered"]:
            err_console.print(f"[red]Not trusted: {', '.join(weak) or 'none'}; uncovered ladders: "
                              f"{', '.join(section['uncovered']) or 'none'}[/red]")
            return 1
    return 0
