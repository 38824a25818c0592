"""Which domain judge a run uses: a given judge checkpoint, or the one cached for the data set (trained on
first use, like the autoencoder), returned as one `LoadedJudge` with what identifies it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aebench.dataset import ImageDataset
from aebench.errors import CheckpointError
from aebench.infra.cache_entries import DamagedEntry, load_or_compute
from aebench.infra.paths import cache_root

JUDGE_NAME = "judge.safetensors"


@dataclass
class LoadedJudge:
    module: Any  # aebench.models.classifier.JudgeClassifier, eval mode, on the CPU
    checksum: str  # sha256 of the weights file
    sidecar: dict[str, Any]
    path: Path

    @property
    def heldout_accuracy(self) -> float | None:
        value = (self.sidecar.get("metrics") or {}).get("heldout_accuracy")
        return float(value) if isinstance(value, (int, float)) else None

    def provenance(self) -> dict[str, Any]:
        """What the results record about the judge (extractor provenance)."""
        metrics, data = self.sidecar.get("metrics") or {}, self.sidecar.get("dataset") or {}
        return {"checksum": self.checksum, "path": str(self.path), "heldout_accuracy": self.heldout_accuracy,
                "train_accuracy": metrics.get("train_accuracy"), "num_classes": metrics.get("num_classes"),
                "majority_baseline": metrics.get("majority_baseline"), "trained_on": data.get("name"),
                "trained_on_fingerprint": data.get("fingerprint"), "n_train": data.get("n_train"),
                "n_heldout": data.get("n_heldout"), "labels": data.get("labels"), "seed": self.sidecar.get("seed"),
                "width": (self.sidecar.get("architecture") or {}).get("config", {}).get("width")}


def judge_folder_name(dataset: ImageDataset, seed: int) -> str:
    return f"{dataset.name}-{dataset.fingerprint()}-judge-s{seed}"


def default_judge_path(dataset: ImageDataset, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Where the judge aebench trains for this data set and seed is cached (beside its autoencoders)."""
    return cache_root(cache_dir) / "models" / judge_folder_name(dataset, seed) / JUDGE_NAME


def load_judge(path: str | Path) -> LoadedJudge:
    """A judge checkpoint (weights file or its folder), verified against its sidecar's checksum."""
    from aebench.models.checkpoint import load_checkpoint

    path = Path(path).expanduser()
    if path.is_dir():
        path = path / JUDGE_NAME
    if not path.is_file():
        raise CheckpointError(f"Judge checkpoint {path} not found; train one with `aebench judge train --out {path}` "
                              f"or fix domain.checkpoint.")
    module, sidecar = load_checkpoint(path, "cpu", build=_build, retrain="aebench judge train --force")
    return LoadedJudge(module=module, checksum=sidecar["weights_sha256"], sidecar=sidecar, path=path)


def _build(meta: dict[str, Any], where: Path) -> torch.nn.Module:
    from aebench.errors import AebenchError
    from aebench.models.classifier import ARCHITECTURE, build_classifier
    from aebench.models.judge_training import JUDGE_FORMAT

    name = meta["architecture"]["name"]
    if name != ARCHITECTURE or meta.get("kind") != JUDGE_FORMAT:
        raise CheckpointError(f"{where} is not a domain judge (architecture {name!r}); pass a judge checkpoint "
                              f"written by `aebench judge train`, not an autoencoder.")
    try:
        return build_classifier(meta["architecture"]["config"])
    except AebenchError as exc:
        raise CheckpointError(f"Judge checkpoint {where} has an invalid config: {exc}") from None


def resolve_judge(dataset: ImageDataset, *, checkpoint: str | Path | None = None, seed: int = 0,
                  cache_dir: str | Path | None = None, device: str | torch.device = "cpu",
                  train_if_missing: bool = True, quiet: bool = False) -> LoadedJudge:
    """The judge for `dataset`: `checkpoint` when given (its image shape must match), else the cached one
    (trained now, with a message and a progress bar, when missing and `train_if_missing`)."""
    if checkpoint:
        judge = load_judge(checkpoint)
    else:
        path = default_judge_path(dataset, seed, cache_dir)

        def read(p: Path) -> LoadedJudge:
            try:
                return load_judge(p)
            except CheckpointError as exc:  # its weights or sidecar changed, or are cut short: train it again
                raise DamagedEntry(_reason(str(exc))) from None

        def train() -> LoadedJudge:
            if not train_if_missing:
                raise CheckpointError(f"No domain judge for {dataset.name} in {path.parent}; run `aebench judge train "
                                      f"--dataset {dataset.name} --seed {seed}` first.")
            dataset.require_labels("the domain judge")  # before any message about training
            _train_into(path, dataset, seed, device, quiet)
            return load_judge(path)

        # one cache entry like the autoencoder's: made once under its lock when several runs share the cache,
        # a damaged one trained again with a warning; the sidecar is written last
        judge, _ = load_or_compute(path, read, train, f"domain judge for {dataset.name} (seed {seed})",
                                   exists=lambda p: p.is_file() or p.with_suffix(".json").is_file())
    shape = tuple(judge.module.image_shape)
    if shape != tuple(dataset.image_shape):
        raise CheckpointError(f"The judge {judge.path} takes images {shape} but data set {dataset.name} has "
                              f"{tuple(dataset.image_shape)}; use a judge trained on this data set.")
    return judge


def _reason(message: str) -> str:
    """The middle of a CheckpointError's message: what is wrong, without the advice to retrain."""
    return message.split("; retrain")[0].split("; keep the")[0][:160]


def _train_into(path: Path, dataset: ImageDataset, seed: int, device: str | torch.device, quiet: bool) -> None:
    from aebench.infra.console import err_console
    from aebench.infra.io import check_writable_file
    from aebench.models.judge_training import train_and_save_judge

    check_writable_file(path, "the judge cache file")
    if not quiet:
        err_console.print(f"No domain judge for {dataset.name} in {path.parent}; training one on its "
                          f"{dataset.num_classes} classes now (a minute or two on a CPU)...", soft_wrap=True, markup=False)
    result = train_and_save_judge(dataset, path, seed=seed, device=device, progress=not quiet)
    if not quiet:
        m = result.metrics
        err_console.print(f"Judge trained in {m['wall_time_s']:.0f} s: held-out accuracy {m['heldout_accuracy']:.1%} "
                          f"({m['n_heldout']} images, {m['num_classes']} classes); saved {path}",
                          soft_wrap=True, markup=False)
