"""`aebench validate`: do the selected metrics see known degradations of this model's real latents?"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from aebench.cli import cli
from aebench.commands.shared_options import options, settings_from_flags, split_list
from aebench.infra.console import console, err_console
from aebench.metric import LADDERS


@cli.command("validate")
@options("dataset", "model", "checkpoint", "model_seed", "train_latents", "heldout_latents", "latent_dim",
         "assignments", "metrics", "regions", "features", "n_real")
@click.option("--n", type=int, help="The run's sample count: sizes the decoder-matched reference and the default --size.")
@click.option("--size", type=int, help="Real latents per ladder step (default: --n, at most half the usable held-out latents).")
@click.option("--steps", type=int, help="Steps per ladder, step 0 included (default 6).")
@click.option("--ladders", multiple=True, help=f"Ladders to run (default all: {', '.join(LADDERS)}).")
@click.option("--clusters", type=int, help="k-means clusters for the mode-dropping ladder (default 8).")
@options("seed", "device", "batch_size", "out", "cache_dir", "config_path")
@click.option("--json", "as_json", is_flag=True, help="Print the validation section as JSON instead of the table.")
@options("strict", "no_figures", "quiet")
def validate_command(size: int | None, steps: int | None, ladders: tuple[str, ...], clusters: int | None,
                     as_json: bool, strict: bool, quiet: bool, config_path: str | None, assignments: tuple[str, ...],
                     **flags: Any) -> int:
    """Degrade real latents along known-answer ladders and check that every metric gets worse at each step;
    writes results.json (with a `validation` section), report.md, report.html and figures/validation.png."""
    from aebench.options import parse_assignments
    from aebench.reports.html import write_html
    from aebench.reports.markdown import write_markdown
    from aebench.reports.validation import render_validation_table
    from aebench.run.config import RunConfig
    from aebench.validation.run import validate_benchmark

    chosen = {"size": size, "steps": steps, "clusters": clusters, "ladders": split_list(ladders)}
    settings = settings_from_flags(**flags, strict=strict, validation={k: v for k, v in chosen.items() if v is not None})
    config = RunConfig.from_sources(config_path, settings, parse_assignments(assignments))

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
