"""`aebench run`: the main job — decode, score and report every sampler side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console

from aebench.cli import cli
from aebench.commands.shared_options import options, settings_from_flags
from aebench.executors import EXECUTORS
from aebench.infra.console import console, err_console
from aebench.options import parse_assignments


@cli.command("run")
@options("dataset", "model", "checkpoint", "model_seed", "train_latents", "heldout_latents")
@click.option("--sampler", "samplers", multiple=True,
              help="Sampler to run (repeatable, or comma-separated). See `aebench samplers`.")
@click.option("--all", "all_samplers", is_flag=True, help="Run every registered sampler that can run here.")
@options("n", "n_latent", "seed")
@click.option("--seeds", "n_seeds", type=int, help="Repeat every sampler over this many seeds (from --seed) and report "
                                                   "mean and spread.")
@options("assignments", "regions", "metrics", "features", "reference", "n_real", "target", "latent_dim", "device",
         "batch_size", "feature_batch_size", "batch_memory", "precision", "threads", "out", "cache_dir", "config_path",
         "no_figures")
@click.option("--validate", is_flag=True, help="Also run the known-answer ladders of `aebench validate` and store them in the results.")
@options("decide", "budget", "margins")
@click.option("--force", is_flag=True, help="Replace a complete earlier run in --out (its results, reports and figures).")
@click.option("--resume", is_flag=True, help="Keep the finished cells of an interrupted (or complete) run of the same "
                                            "plan in --out and compute only the missing ones.")
@click.option("--executor", type=click.Choice(list(EXECUTORS)), default="local", show_default=True,
              help="Where cells run: " + "; ".join(f"{name}: {entry.help}" for name, entry in EXECUTORS.items()) + ".")
@click.option("--workers", type=int, help="With --executor dask: start a local cluster of this many workers "
                                          "(default: one per core, or one per GPU).")
@click.option("--scheduler", metavar="ADDRESS", help="With --executor dask: use this running cluster (tcp://host:port).")
@options("cell_timeout", "strict", "quiet")
def run_command(force: bool, resume: bool, executor: str, workers: int | None, scheduler: str | None, quiet: bool,
                **flags: Any) -> int:
    """Sample, decode and score samplers; write results.json, report.md, report.html and PNGs."""
    from aebench.run.interrupt import RunInterrupted, Terminated, sigterm_raises

    try:
        with sigterm_raises():
            return _run(force, resume, executor, workers, scheduler, quiet, **flags)
    except RunInterrupted as exc:  # its document is marked; one line says what is kept and how to finish
        err_console.print(exc.message, markup=False, soft_wrap=True, highlight=False)
        return exc.exit_code
    except (KeyboardInterrupt, Terminated) as exc:  # before a run began, or while its reports were written
        sigterm = isinstance(exc, Terminated)
        err_console.print(f"Interrupted by {'SIGTERM' if sigterm else 'Ctrl-C (SIGINT)'}.", markup=False)
        return 143 if sigterm else 130


def _run(force: bool, resume: bool, executor: str, workers: int | None, scheduler: str | None, quiet: bool,
         **flags: Any) -> int:
    from aebench.executors import make_executor
    from aebench.reports.html import write_html
    from aebench.reports.markdown import write_markdown
    from aebench.reports.terminal import render_results
    from aebench.run.folder import FIGURE_DIR
    from aebench.run.runner import run_benchmark
    from aebench.run.suite import run_suite, suite_configs

    runner = make_executor(executor, workers=workers, scheduler=scheduler)
    notify = lambda line: err_console.print(line, markup=False, soft_wrap=True)  # noqa: E731
    suite = suite_configs(flags["config_path"], settings_from_flags(**flags),
                          parse_assignments(flags["assignments"]), notify=notify) if flags["config_path"] else None
    if suite is not None:  # a suite across models: one run per [[models]] entry, every entry checked first
        def report(label: str, doc: Any) -> None:
            write_markdown(doc, Path(doc["config"]["out"]))
            write_html(doc, Path(doc["config"]["out"]))

        docs = run_suite(suite, executor=runner, force=force, resume=resume, quiet=quiet, notify=notify,
                         on_run=report)
        console.print(f"Suite of {len(docs)} model(s): {suite.root / 'suite.md'} (results.json of each in "
                      f"{suite.root}/<label>/)")
        failed = [f"{label}/{row['name']}" for label, doc in docs.items() for row in doc["samplers"]
                  if row["status"] != "ok"]
        return _failed(failed)

    config = config_from_options(**flags, notify=notify)
    started = time.perf_counter()
    doc = run_benchmark(config, quiet=quiet, force=force, resume=resume, executor=runner)
    elapsed = time.perf_counter() - started
    out_dir = Path(config.out)
    md = write_markdown(doc, out_dir)
    html = write_html(doc, out_dir)
    # the terminal gets the headline and diagnostic columns in a layout that fits its width (logs that
    # are not a terminal get a wide one); report.md/html and results.json hold every metric
    table_console = console if console.is_terminal else Console(width=max(console.width, 160))
    render_results(doc, table_console)
    console.print(f"Results: {out_dir / 'results.json'}")
    pictures = f"; pictures in {out_dir / FIGURE_DIR}" if any(r.get("figures") for r in doc["samplers"]) else ""
    console.print(f"Report:  {html}  (and {md.name}){pictures}")
    console.print(f"[dim]Wall time {elapsed:.1f} s[/dim]")
    from aebench.results.reconstruction import warning_text

    useless = warning_text(doc["model"].get("reconstruction"))
    if useless:  # said before the samplers ran; said again under their numbers, which it concerns
        err_console.print(f"Warning: {useless}", markup=False, soft_wrap=True, highlight=False)
    return _failed([row["name"] for row in doc["samplers"] if row["status"] != "ok"])


def _failed(names: list[str]) -> int:
    if names:
        err_console.print(f"[red]{len(names)} sampler(s) failed: {', '.join(names)}[/red]")
        return 1
    return 0


def config_from_options(*, config_path: str | None = None, assignments: tuple[str, ...] = (),
                        notify: Callable[[str], None] | None = None, model_entry: dict[str, Any] | None = None,
                        **flags: Any) -> Any:
    """The checked RunConfig that `aebench run` with these option values would use (no work done). Takes
    the click parameter names, so `ctx.params` of a parsed command line can be passed as is."""
    from aebench.run.config import RunConfig

    return RunConfig.from_sources(config_path, settings_from_flags(**flags), parse_assignments(assignments),
                                  notify=notify, model_entry=model_entry)
