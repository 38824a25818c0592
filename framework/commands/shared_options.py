"""The command-line options of the commands that set up a run (`aebench run`, `aebench validate`), declared
once so a word means one thing everywhere, and the one mapping from their values to run settings (the
names of `aebench.run.config.RunConfig`, as a suite file spells them). Every mode (`--all`, seeds, what
`--model` names, latent files) is resolved by `RunConfig.from_sources`, not here."""

from __future__ import annotations

from typing import Any, Callable

import click

from aebench.errors import OptionError

MODEL_HELP = "A trained checkpoint (.safetensors) or your own AE as package.module:factory."
MODEL_SEED_HELP = "Training seed of the cached model (default 0); `aebench train --model-seed` makes it."

# every option a run-setting command may take, by name; a command lists the ones it takes
OPTIONS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "dataset": click.option("--dataset", help="Registered data set (default: orl_faces). See `aebench datasets`."),
    "model": click.option("--model", "model", metavar="CKPT|MODULE:FACTORY", help=MODEL_HELP),
    "checkpoint": click.option("--checkpoint", type=click.Path(dir_okay=False), help="A trained aebench checkpoint."),
    "model_seed": click.option("--model-seed", type=int, help=MODEL_SEED_HELP),
    "train_latents": click.option("--train-latents", type=click.Path(dir_okay=False),
                                  help="Training latents (.npy or .safetensors) instead of encoding a data set."),
    "heldout_latents": click.option("--heldout-latents", type=click.Path(dir_okay=False),
                                    help="Held-out latents, with --train-latents."),
    "latent_dim": click.option("--latent-dim", type=int,
                               help="Latent dimension of the cached/trained model (default: per data set)."),
    "assignments": click.option("--set", "assignments", multiple=True, metavar="OWNER.OPTION=VALUE",
                                help="Set an option of a sampler, region, metric, the extractor or the data set "
                                     "(repeatable; a list is comma-separated)."),
    "regions": click.option("--regions", multiple=True,
                            help="Regions to score hits in (default: box,ellipsoid,knn,density)."),
    "metrics": click.option("--metrics", multiple=True, help="Metrics (default: all built-in). See `aebench plugins`."),
    "features": click.option("--features", help="Feature extractor for image metrics (default: inception)."),
    "reference": click.option("--reference", type=click.Choice(["auto", "heldout", "train"]),
                              help="Real images for image metrics."),
    "n": click.option("--n", type=int, help="Decoded images per sampler and seed for the image metrics (default 128 on "
                                           "a CPU, 2048 on a GPU)."),
    "n_latent": click.option("--n-latent", type=int, help="Latent points per sampler and seed for the latent-space "
                                                         "metrics (default 4096, at least --n); the first --n of "
                                                         "them are decoded."),
    "n_real": click.option("--n-real", type=int,
                           help="At most this many real reference images (default 1000 on a CPU, 10000 on a GPU)."),
    "seed": click.option("--seed", type=int, help="First seed of the run (default 0): sampling, and the random parts "
                                                  "of metrics and the ladders."),
    "target": click.option("--target", type=float, help="Share of held-out latents each region accepts (default 0.95)."),
    "device": click.option("--device", help="auto (default), cpu, cuda or cuda:N."),
    "batch_size": click.option("--batch-size", type=int,
                               help="Latents per decode/encode batch (default 128 on a CPU, 1024 on a GPU)."),
    "feature_batch_size": click.option(
        "--feature-batch-size", type=int,
        help="Images per feature-extraction batch (default: --batch-memory / the extractor's memory per image)."),
    "batch_memory": click.option("--batch-memory", metavar="SIZE",
                                 help="Memory one feature batch may use, e.g. 256M or 4G (default 256M on a CPU, a "
                                      "quarter of the GPU)."),
    "precision": click.option("--precision", help="Decode/feature precision: fp32 (default, TF32 off) or tf32 (CUDA "
                                                  "only, unvalidated); recorded with the results."),
    "threads": click.option("--threads", help="CPU threads: a number or auto (default: the cores other processes "
                                              "leave free)."),
    "out": click.option("--out", type=click.Path(file_okay=False), help="Output folder (default ./aebench-out)."),
    "cache_dir": click.option("--cache-dir", type=click.Path(file_okay=False),
                              help="Cache folder (default: $AEBENCH_CACHE_DIR or the user cache)."),
    "config_path": click.option("--config", "config_path", type=click.Path(dir_okay=False),
                                help="TOML file defining a whole suite (run settings, [[samplers]], [[models]])."),
    "no_figures": click.option("--no-figures", is_flag=True, help="Skip the PNGs (faster)."),
    "cell_timeout": click.option(
        "--cell-timeout", metavar="DURATION",
        help="Time limit of each (sampler, seed) cell and of each fit, e.g. 90s, 10m, 1h: a cell past it fails with "
             "'timed out' and the others still run (default: none)."),
    # one meaning in every command: fail, rather than warn, when the results cannot be trusted
    "strict": click.option("--strict", is_flag=True,
                           help="Fail instead of warning when the results cannot be trusted: a model that reconstructs "
                                "held-out images worse than the mean image stops the command (exit 2); `validate` also "
                                "exits 1 when a headline metric is not trusted or a ladder is uncovered (for CI)."),
    "quiet": click.option("--quiet", is_flag=True, help="No progress bars."),
    "decide": click.option("--decide", is_flag=True,
                           help="Racing rounds: after the first round, give more seeds only to the samplers that can "
                                "still be first, until every pair among them is decided or the budget is spent."),
    "budget": click.option("--budget", metavar="DURATION|IMAGES",
                           help="With --decide: what the rounds may spend, a duration (15m, 900s) or decoded images "
                                "(20000); default four times the first round's images."),
    "margins": click.option("--margin", "margins", multiple=True, metavar="METRIC=SIZE",
                            help="Equivalence margin of a ranking metric for this run, e.g. latent_fd=3%% or "
                                 "latent_copies=0.01 (repeatable; default: the margin the metric declares)."),
}


def options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command with the named options of `OPTIONS`, listed by --help in this order."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            command = OPTIONS[name](command)
        return command
    return decorate


def split_list(values: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """`--metrics a,b --metrics c` -> [a, b, c]; nothing given -> None (keep the default)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


# flags whose value is a run setting of the same name
_SAME_NAME = ("dataset", "model", "checkpoint", "model_seed", "train_latents", "heldout_latents", "latent_dim", "n",
              "n_latent", "features", "reference", "n_real", "target", "device", "batch_size", "feature_batch_size",
              "batch_memory", "precision", "threads", "out", "cache_dir", "seed", "cell_timeout")


def settings_from_flags(*, samplers: tuple[str, ...] = (), all_samplers: bool = False, n_seeds: int | None = None,
                        regions: tuple[str, ...] = (), metrics: tuple[str, ...] = (), no_figures: bool = False,
                        validate: bool = False, validation: dict[str, Any] | None = None, decide: bool = False,
                        margins: tuple[str, ...] = (), strict: bool = False, **flags: Any) -> dict[str, Any]:
    """Run settings (RunConfig names) for parsed flag values; unset flags are None (the file's or the
    default value stays). Flags that are not run settings are ignored."""
    if all_samplers and samplers:
        raise OptionError("Give either --sampler or --all, not both.")
    settings: dict[str, Any] = {name: flags.get(name) for name in _SAME_NAME}
    settings.update(samplers="all" if all_samplers else split_list(samplers), seeds=n_seeds,
                    regions=split_list(regions), metrics=split_list(metrics),
                    figures=False if no_figures else None, decide=True if decide else None,
                    budget=flags.get("budget"), margins=parse_margins(margins),
                    strict=True if strict else None)
    if validate or validation is not None:
        settings["validation"] = dict(validation or {})
    return settings


def parse_margins(values: tuple[str, ...] | list[str] | None) -> dict[str, str] | None:
    """`--margin latent_fd=3%` (repeatable, or comma-separated) -> {metric key: margin text}; None when none
    is given. The sizes are checked with the run's settings (`RunConfig.check`)."""
    out: dict[str, str] = {}
    for item in split_list(values) or []:
        key, sep, size = item.partition("=")
        if not sep or not key.strip() or not size.strip():
            raise OptionError(f"--margin {item!r}: write METRIC=SIZE, e.g. --margin latent_fd=3% or latent_copies=0.01.")
        out[key.strip()] = size.strip()
    return out or None


def old_spelling(flag: str, message: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hidden option that refuses an old spelling whose meaning moved, with one line saying what to write."""
    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise OptionError(message)

    return click.option(flag, "_old_" + flag.strip("-").replace("-", "_"), hidden=True, expose_value=False,
                        callback=refuse, is_eager=True)


__all__ = ["OPTIONS", "options", "old_spelling", "parse_margins", "settings_from_flags", "split_list"]
