"""`aebench run`: the main job — decode, score and report every sampler side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console

from aebench.cli import cli
from aebench.commands.shared_options import model_overrides, model_source_options, split_list
from aebench.errors import OptionError
from aebench.infra.console import console, err_console


@cli.command("run")
@model_source_options
@click.option("--sampler", "samplers", multiple=True,
              help="Sampler to run (repeatable, or comma-separated). See `aebench samplers`.")
@click.option("--all", "all_samplers", is_flag=True, help="Run every registered sampler.")
@click.option("--n", type=int, help="Latent points per sampler and seed (default 128 on a CPU, 2048 on a GPU).")
@click.option("--seed", type=int, help="First seed (default 0).")
@click.option("--seeds", "n_seeds", type=int, help="Repeat every sampler over this many seeds and report mean and spread.")
@click.option("--set", "assignments", multiple=True, metavar="NAME.OPTION=VALUE",
              help="Set an option of a sampler, region, metric, the extractor or the data set (repeatable).")
@click.option("--regions", multiple=True, help="Regions to score hits in (default: box,ellipsoid,knn,density).")
@click.option("--metrics", multiple=True, help="Metrics (default: all built-in). See `aebench plugins`.")
@click.option("--features", help="Feature extractor for image metrics (default: inception).")
@click.option("--reference", type=click.Choice(["auto", "heldout", "train"]), help="Real images for image metrics.")
@click.option("--n-real", type=int, help="At most this many real reference images (default 1000 on a CPU, 10000 on a GPU).")
@click.option("--target", type=float, help="Share of held-out latents each region accepts (default 0.95).")
@click.option("--latent-dim", type=int, help="Latent dimension of the cached/trained model (default: per data set).")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=int, help="Latents per decode/encode batch (default 128 on a CPU, 1024 on a GPU).")
@click.option("--feature-batch-size", type=int,
              help="Images per feature-extraction batch (default: --batch-memory / the extractor's memory per image).")
@click.option("--batch-memory", metavar="SIZE",
              help="Memory one feature batch may use, e.g. 256M or 4G (default 256M on a CPU, a quarter of the GPU).")
@click.option("--precision", help="Decode/feature precision: fp32 (default, TF32 off) or tf32 (CUDA only, "
                                   "unvalidated); recorded with the results.")
@click.option("--threads", help="CPU threads: a number or auto (default: the cores other processes leave free).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default ./aebench-out).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache folder (default: $AEBENCH_CACHE_DIR or the user cache).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file defining a whole suite.")
@click.option("--no-figures", is_flag=True, help="Skip the PNGs (faster).")
@click.option("--validate", is_flag=True, help="Also run the known-answer ladders of `aebench validate` and store them in the results.")
@click.option("--force", is_flag=True, help="Replace a complete earlier run in --out (its results, reports and figures).")
@click.option("--resume", is_flag=True, help="Keep the finished cells of an interrupted (or complete) run of the same "
                                            "plan in --out and compute only the missing ones.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where cells run: in this process, or on a Dask cluster (pip install aebench[dask]).")
@click.option("--workers", type=int, help="With --executor dask: start a local cluster of this many workers "
                                          "(default: one per core, or one per GPU).")
@click.option("--scheduler", metavar="ADDRESS", help="With --executor dask: use this running cluster (tcp://host:port).")
@click.option("--cell-timeout", metavar="DURATION",
              help="Time limit of each (sampler, seed) cell and of each fit, e.g. 90s, 10m, 1h: a cell past it "
                   "fails with 'timed out' and the others still run (default: none).")
@click.option("--strict", is_flag=True, help="Stop (exit 2) when the model reconstructs held-out images worse than "
                                             "the mean image, instead of warning.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_command(dataset, model, checkpoint, train_latents, heldout_latents, samplers, all_samplers, n, seed, n_seeds,
                assignments, regions, metrics, features, reference, n_real, target, latent_dim, device, batch_size,
                feature_batch_size, batch_memory, precision, threads, out, cache_dir, config_path, no_figures,
                validate, force, resume, executor, workers, scheduler, cell_timeout, strict, quiet) -> int:
    """Sample, decode and score samplers; write results.json, report.md, report.html and PNGs."""
    from aebench.executors import make_executor

    runner = make_executor(executor, workers=workers, scheduler=scheduler)
    from aebench.run.suite import suite_models

    entries = suite_models(config_path)
    # the options that define the run's configuration (the rest say how to execute it)
    options = dict(
        dataset=dataset, model=model, checkpoint=checkpoint, train_latents=train_latents,
        heldout_latents=heldout_latents, samplers=samplers, all_samplers=all_samplers, n=n, seed=seed,
        n_seeds=n_seeds, assignments=assignments, regions=regions, metrics=metrics, features=features,
        reference=reference, n_real=n_real, target=target, latent_dim=latent_dim, device=device,
        batch_size=batch_size, feature_batch_size=feature_batch_size, batch_memory=batch_memory,
        precision=precision, threads=threads, out=out, cache_dir=cache_dir, config_path=config_path,
        no_figures=no_figures, validate=validate, cell_timeout=cell_timeout, strict=strict)
    from aebench.run.interrupt import RunInterrupted, Terminated, sigterm_raises

    try:
        with sigterm_raises():
            if entries:
                return _run_suite(entries, options, runner, force=force, resume=resume, quiet=quiet)
            return _run_one(options, runner, force=force, resume=resume, quiet=quiet)
    except RunInterrupted as exc:  # its document is marked; one line says what is kept and how to finish
        err_console.print(exc.message, markup=False, soft_wrap=True, highlight=False)
        return exc.exit_code
    except (KeyboardInterrupt, Terminated) as exc:  # before a run began, or while its reports were written
        sigterm = isinstance(exc, Terminated)
        err_console.print(f"Interrupted by {'SIGTERM' if sigterm else 'Ctrl-C (SIGINT)'}.", markup=False)
        return 143 if sigterm else 130


def _run_one(options: dict[str, Any], runner: Any, *, force: bool, resume: bool, quiet: bool) -> int:
    from aebench.reports.html import write_html
    from aebench.reports.markdown import write_markdown
    from aebench.reports.terminal import render_results
    from aebench.run.folder import FIGURE_DIR
    from aebench.run.runner import run_benchmark

    config = config_from_options(**options, notify=lambda line: err_console.print(line, markup=False, soft_wrap=True))
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
    failed = [row["name"] for row in doc["samplers"] if row["status"] != "ok"]
    console.print(f"Results: {out_dir / 'results.json'}")
    pictures = f"; pictures in {out_dir / FIGURE_DIR}" if any(r.get("figures") for r in doc["samplers"]) else ""
    console.print(f"Report:  {html}  (and {md.name}){pictures}")
    console.print(f"[dim]Wall time {elapsed:.1f} s[/dim]")
    from aebench.run.model_check import warning_text

    useless = warning_text(doc["model"].get("reconstruction"))
    if useless:  # said before the samplers ran; said again under their numbers, which it concerns
        err_console.print(f"Warning: {useless}", markup=False, soft_wrap=True, highlight=False)
    if failed:
        err_console.print(f"[red]{len(failed)} sampler(s) failed: {', '.join(failed)}[/red]")
        return 1
    return 0


def _run_suite(entries: list[dict[str, Any]], options: dict[str, Any], runner: Any, *, force: bool, resume: bool,
               quiet: bool) -> int:
    """One run per [[models]] entry of the suite, each in --out/<label>/, then the cross-model table."""
    from aebench.reports.html import write_html
    from aebench.reports.markdown import write_markdown
    from aebench.run.runner import run_benchmark
    from aebench.run.suite import write_suite_tables

    notify = lambda line: err_console.print(line, markup=False, soft_wrap=True)  # noqa: E731
    configs = [config_from_options(**options, model_entry=entry, notify=notify) for entry in entries]  # all checked first
    root = Path(configs[0].out)
    docs: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for entry, config in zip(entries, configs):
        config.out = str(root / entry["label"])
        err_console.print(f"[bold]{entry['label']}[/bold]: results in {config.out}")
        doc = run_benchmark(config, quiet=quiet, force=force, resume=resume, executor=runner)
        write_markdown(doc, Path(config.out))
        write_html(doc, Path(config.out))
        docs[entry["label"]] = doc
        failed += [f"{entry['label']}/{row['name']}" for row in doc["samplers"] if row["status"] != "ok"]
    table = write_suite_tables(docs, root)
    console.print(f"Suite of {len(docs)} model(s): {table} (results.json of each in {root}/<label>/)")
    if failed:
        err_console.print(f"[red]{len(failed)} sampler(s) failed: {', '.join(failed)}[/red]")
        return 1
    return 0


def config_from_options(*, dataset=None, model=None, checkpoint=None, train_latents=None, heldout_latents=None,
                        samplers=(), all_samplers=False, n=None, seed=None, n_seeds=None, assignments=(), regions=(),
                        metrics=(), features=None, reference=None, n_real=None, target=None, latent_dim=None,
                        device=None, batch_size=None, feature_batch_size=None, batch_memory=None, precision=None,
                        threads=None, out=None, cache_dir=None, config_path=None, no_figures=False,
                        validate=False, cell_timeout=None, strict=False, notify: Callable[[str], None] | None = None,
                        model_entry: dict[str, Any] | None = None, **_ignored: Any) -> Any:
    """The validated RunConfig that `aebench run` with these option values would use (no work done).
    Takes the click parameter names, so `ctx.params` of a parsed command line can be passed as is."""
    from aebench.options import parse_assignments
    from aebench.plugins import get_registry
    from aebench.run.config import LATENT_METRICS, RunConfig, SamplerSpec

    overrides: dict[str, Any] = {
        "dataset": dataset, "train_latents": train_latents, "heldout_latents": heldout_latents, "n": n,
        "features": features, "reference": reference, "n_real": n_real, "target": target, "latent_dim": latent_dim,
        "device": device, "batch_size": batch_size, "feature_batch_size": feature_batch_size,
        "batch_memory": batch_memory, "precision": precision, "threads": threads, "out": out, "cache_dir": cache_dir,
        "regions": split_list(regions), "metrics": split_list(metrics), "cell_timeout": cell_timeout,
    }
    overrides.update(model_overrides(model, checkpoint))
    if no_figures:
        overrides["figures"] = False
    if validate:
        overrides["validation"] = {}
    if strict:
        overrides["strict"] = True
    names = split_list(samplers)
    if all_samplers and names:
        raise OptionError("Give either --sampler or --all, not both.")
    if all_samplers:  # every sampler that can run here; those missing an optional dependency are named
        from aebench.sampler import available_samplers

        usable = available_samplers()
        skipped = [name for name in get_registry("sampler").names() if name not in usable]
        if skipped and notify is not None:
            notify(f"Note: --all skips {', '.join(skipped)} (not installed here; see `aebench samplers`).")
        overrides["samplers"] = [SamplerSpec(name) for name in usable]
    elif names:
        overrides["samplers"] = [SamplerSpec(name) for name in names]
    if n_seeds is not None and n_seeds < 1:
        raise OptionError(f"--seeds must be at least 1, got {n_seeds}.")
    if seed is not None and seed < 0:
        raise OptionError(f"--seed must be a non-negative integer, got {seed}.")
    overrides["seed"], overrides["seeds"] = seed, n_seeds  # K seeds from S, like `seed`/`seeds` in a suite
    clear: tuple[str, ...] = ()
    if train_latents and dataset is None and config_path is None:
        # latent files replace the data set; without real images only latent-space metrics apply
        clear = ("dataset",)
        if overrides["metrics"] is None:
            overrides["metrics"] = list(LATENT_METRICS)
    return RunConfig.from_sources(config_path, overrides, parse_assignments(assignments), clear=clear, notify=notify,
                                  model_entry=model_entry)
