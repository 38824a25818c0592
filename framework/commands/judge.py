"""`aebench judge train`: train the data set's domain judge (a CNN classifier of its own labels) into the
model cache, where `--features domain` finds it."""

from __future__ import annotations

from pathlib import Path

import click

from aebench.cli import cli
from aebench.errors import OptionError

SET_OWNERS = ("dataset", "judge", "train")


def _split_sets(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """--set dataset.limit_train=20000 / judge.width=64 / train.batch_size=64 -> {owner: {option: value}}."""
    from aebench.options import parse_assignments

    groups = parse_assignments(pairs)
    unknown = [k for k in groups if k not in SET_OWNERS]
    if unknown:
        raise OptionError(f"--set with unknown prefix '{unknown[0]}'; use dataset.OPTION, judge.OPTION or train.OPTION.")
    for fixed in ("in_channels", "image_size", "num_classes"):
        if fixed in groups.get("judge", {}):
            raise OptionError(f"--set judge.{fixed} comes from the data set; set the data set's options instead.")
    return {owner: groups.get(owner, {}) for owner in SET_OWNERS}


@cli.group("judge")
def judge_group() -> None:
    """The domain judge: a classifier of the data set's own labels whose features (`--features domain`) are a
    second feature space beside Inception."""


@judge_group.command("train")
@click.option("--dataset", "dataset_name", default="orl_faces", show_default=True, help="Registered data set name.")
@click.option("--set", "sets", multiple=True, metavar="OWNER.OPTION=VALUE",
              help="Set a data set (dataset.limit_train=20000), network (judge.width=64) or training "
                   "(train.batch_size=64) option; repeatable.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the training images (default: automatic).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of initialisation, dropout, shuffling and augmentation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (auto uses a GPU when present).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="aebench cache folder (default: $AEBENCH_CACHE_DIR or the user cache).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Judge checkpoint path (default: the model cache, where --features domain looks).")
@click.option("--force", is_flag=True, help="Retrain even if the judge exists.")
@click.option("--threads", default="auto", show_default=True,
              help="CPU threads: a number or auto (the cores other processes leave free).")
def judge_train_command(dataset_name: str, sets: tuple[str, ...], epochs: int | None, seed: int, device: str,
                        cache_dir: Path | None, out: Path | None, force: bool, threads: str) -> None:
    """Train the domain judge on the training split's labels; reports its held-out accuracy."""
    from aebench.caches.judges import default_judge_path
    from aebench.dataset import load_dataset
    from aebench.errors import CheckpointError
    from aebench.infra.console import console
    from aebench.infra.device import resolve_device
    from aebench.infra.io import check_writable_file
    from aebench.infra.paths import cache_root
    from aebench.infra.threads import resolve_threads, thread_limit
    from aebench.models.judge_training import train_and_save_judge

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False)

    options = _split_sets(sets)
    resolve_threads(threads)
    dev = resolve_device(device)
    root = cache_root(cache_dir)
    if out is not None:
        check_writable_file(out, "--out checkpoint")
    dataset = load_dataset(dataset_name, options["dataset"], cache_dir=root)
    dataset.require_labels("the domain judge")  # before anything else: one line naming what would work
    path = out.expanduser() if out is not None else default_judge_path(dataset, seed, root)
    if path.exists() and not force:
        raise CheckpointError(f"Judge {path} already exists; pass --force to retrain it or --out to write elsewhere.")
    check_writable_file(path, "--out checkpoint" if out is not None else "the judge cache file")
    say(f"Training the domain judge on {dataset.name}: {dataset.num_classes} classes ({dataset.labels_source}), "
        f"{dataset.train_index.numel()} training and {dataset.heldout_index.numel()} held-out images "
        f"{dataset.image_shape}, device {dev}, seed {seed}")
    with thread_limit(threads):
        result = train_and_save_judge(dataset, path, training=options["train"], net_options=options["judge"],
                                      epochs=epochs, seed=seed, device=dev, progress=True)
    m = result.metrics
    say(f"Held-out accuracy {m['heldout_accuracy']:.1%} on {m['n_heldout']} images (majority class "
        f"{m['majority_baseline']:.1%}), train accuracy {m['train_accuracy']:.1%}, {m['epochs']} epochs, "
        f"{m['wall_time_s']:.0f} s")
    say(f"Judge: {path} (sha256 {result.sidecar['weights_sha256'][:16]}); use it with --features domain")
