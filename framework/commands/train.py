"""`aebench train`: train the data set's autoencoder and save the checkpoint + a reconstruction PNG."""

from __future__ import annotations

from pathlib import Path

import click

from aebench.cli import cli
from aebench.commands.shared_options import old_spelling
from aebench.errors import OptionError

SET_OWNERS = ("dataset", "model", "train")


def _split_sets(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """--set dataset.size=32 / model.channels=16,32 / train.batch_size=32 -> {owner: {option: value}}."""
    from aebench.options import parse_assignments

    groups = parse_assignments(pairs, owners=SET_OWNERS)
    if "latent_dim" in groups.get("model", {}):
        raise OptionError("--set model.latent_dim is not used; pass --latent-dim N instead.")
    return {owner: groups.get(owner, {}) for owner in SET_OWNERS}


@cli.command("train")
@click.option("--dataset", "dataset_name", default="orl_faces", show_default=True, help="Registered data set name.")
@click.option("--arch", "arch_name", default="conv_ae", show_default=True,
              help="Registered architecture (autoencoder family) to train; `aebench architectures` lists them.")
@click.option("--set", "sets", multiple=True, metavar="OWNER.OPTION=VALUE",
              help="Set a data set (dataset.size=32), model (model.channels=32,64) or training "
                   "(train.batch_size=32) option; repeatable, a list is comma-separated.")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None,
              help="Latent dimension N (default: per data set, e.g. 64 for orl_faces).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the training images (default: automatic).")
@click.option("--model-seed", "seed", type=int, default=0, show_default=True,
              help="Training seed: initialisation, shuffling and augmentation (`aebench run --model-seed` finds it).")
@old_spelling("--seed", "--seed is the first sampling seed of `aebench run`; the training seed is --model-seed N.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (auto uses a GPU when present).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="aebench cache folder (default: $AEBENCH_CACHE_DIR or the user cache).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint path (default: the model cache, where `aebench run` looks).")
@click.option("--force", is_flag=True, help="Retrain even if the checkpoint exists.")
@click.option("--threads", default="auto", show_default=True,
              help="CPU threads: a number or auto (the cores other processes leave free).")
def train_command(dataset_name: str, arch_name: str, sets: tuple[str, ...], latent_dim: int | None, epochs: int | None, seed: int,
                  device: str, cache_dir: Path | None, out: Path | None, force: bool, threads: str) -> None:
    """Train the autoencoder for a data set (held-out MSE is reported against the mean-image baseline)."""
    from aebench.caches.models import default_checkpoint_path
    from aebench.dataset import default_latent_dim, load_dataset
    from aebench.errors import CheckpointError
    from aebench.infra.console import console
    from aebench.infra.device import resolve_device
    from aebench.infra.io import check_writable_file
    from aebench.infra.paths import cache_root
    from aebench.models.training import train_and_save

    def say(text: str) -> None:  # paths stay on one line (copy-pasteable) and are never read as markup
        console.print(text, soft_wrap=True, markup=False)

    from aebench.infra.threads import resolve_threads, thread_limit
    from aebench.plugins import get_registry

    options = _split_sets(sets)
    get_registry("architecture").get(arch_name)  # an unknown name fails before any work
    resolve_threads(threads)  # a bad value fails before any work
    dev = resolve_device(device)
    root = cache_root(cache_dir)
    if out is not None:  # before loading anything: the trained model must have somewhere to go
        check_writable_file(out, "--out checkpoint")
    dataset = load_dataset(dataset_name, options["dataset"], cache_dir=root)
    n = latent_dim if latent_dim is not None else default_latent_dim(dataset.name)
    path = out.expanduser() if out is not None else default_checkpoint_path(dataset, n, seed, root)
    if path.exists() and not force:
        raise CheckpointError(f"Checkpoint {path} already exists; pass --force to retrain it or --out to write elsewhere.")
    check_writable_file(path, "--out checkpoint" if out is not None else "the model cache file")
    say(f"Training {arch_name} (N={n}) on {dataset.name}: {dataset.train_index.numel()} training, "
                  f"{dataset.heldout_index.numel()} held-out images {dataset.image_shape}, device {dev}, seed {seed}")
    from aebench.infra.locks import entry_lock

    # a run that trains the same cached model at the same time holds this lock: wait, then refuse as above
    with thread_limit(threads), entry_lock(path, f"model {path.parent.name}"):
        if path.exists() and not force:
            raise CheckpointError(f"Checkpoint {path} was just written by another aebench process; pass --force to "
                                  f"retrain it or --out to write elsewhere.")
        result = train_and_save(dataset, path, latent_dim=n, model_options=options["model"], training=options["train"],
                                epochs=epochs, seed=seed, device=dev, progress=True,
                                architecture=arch_name)
    m = result.metrics
    ratio = m["baseline_mse"] / m["heldout_mse"] if m["heldout_mse"] > 0 else float("inf")
    say(
        f"Held-out MSE {m['heldout_mse']:.2e} (best of {m['epochs_run']} epochs: {m['best_epoch']}), train MSE "
        f"{m['train_mse']:.2e}, mean-image baseline {m['baseline_mse']:.2e} ({ratio:.1f}x lower), {m['wall_time_s']:.0f} s"
    )
    size_mb = path.stat().st_size / 1e6
    say(f"Checkpoint: {path} ({size_mb:.1f} MB, sha256 {result.sidecar['weights_sha256'][:16]})")
    say(f"Reconstructions (held-out originals above, reconstructions below): {result.image}")
