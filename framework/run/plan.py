"""The run plan: a checked `RunConfig` with what depends on the machine resolved once (the device, the
sample and reference counts, the decode and feature batch sizes, the fit seed, whether latents come
from files), its plugin options read as their declared types, frozen, plus a hash that names it.

`aebench run`, `aebench validate` and the Python API (`run_benchmark`, `validate_benchmark`, `prepare`)
all go through `resolve_plan`; nothing changes the plan afterwards (the config it holds is a private
copy). The hash covers what decides the numbers of a cell, not where or how fast they are made (output
folder, threads, executor, figures, cache folder), so `--resume` can reuse the cells of an interrupted
run of the same plan and refuse those of another. Batch sizes are not hashed either: batches never
change the numbers (see `aebench.run.batching`). The cell time limit and `strict` are not hashed
either: a cell that timed out failed, and failed cells run again on `--resume`.

One choice waits for the data: `reference = "auto"` picks held-out or training images by how many
held-out images the data set has (`image_reference`), which is known once it is loaded.

Seeds: the *sampling* seed is the cell's seed (the `torch.Generator` passed to `sample`); the *fit* seed
is the same for every seed of a sampler, so each (model, sampler spec) is fitted once: it is the run's
first seed (set as torch's global seed around `fit`) unless the sampler's own options carry one (the
gmm's `fit_seed`, for instance), which then decides the fit.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass

from aebench.errors import OptionError
from aebench.results.schema import PlanSection
from aebench.run.config import (
    DEFAULT_N_CPU,
    DEFAULT_N_GPU,
    DEFAULT_N_LATENT,
    DEFAULT_N_REAL_CPU,
    DEFAULT_N_REAL_GPU,
    RunConfig,
    SamplerSpec,
)

# settings that change where or how fast a run works, never its numbers
# (racing settings decide which cells run, never a cell's numbers: a race resumes with a larger budget)
_NOT_HASHED = ("out", "threads", "figures", "cache_dir", "decide", "budget", "margins",
               "cell_timeout", "strict")


@dataclass(frozen=True)
class RunPlan:
    """A resolved run: `config` holds the final values (n, n_latent, n_real set; plugin options typed); `device`
    is the resolved device string; `latent_files` says whether latents come from the user's files instead of
    encoding a data set; `batch_size` is the decode/encode batch and `feature_batch_size` the feature
    batch (None without image metrics), both before any out-of-memory halving."""

    config: RunConfig
    device: str
    latent_files: bool
    fit_seed: int
    hash: str
    batch_size: int = 128
    feature_batch_size: int | None = None

    @property
    def seeds(self) -> list[int]:
        return list(self.config.seeds)

    @property
    def samplers(self) -> list[SamplerSpec]:
        return list(self.config.samplers)

    def cells(self) -> list[tuple[str, int]]:
        """Every (sampler label, seed) in the document's fixed order: samplers as listed, seeds ascending
        as given."""
        return [(spec.label, seed) for spec in self.config.samplers for seed in self.config.seeds]

    def image_reference(self, n_heldout: int | None) -> str:
        """The real images the image metrics compare against: `reference`, with auto resolved by the data
        set's held-out count (None: no data set)."""
        config = self.config
        if config.reference != "auto" or n_heldout is None:
            return config.reference
        return "heldout" if n_heldout >= config.min_heldout_reference else "train"


def resolve_plan(config: RunConfig) -> RunPlan:
    """The frozen plan of `config` (checked here; the caller's object is left as it was)."""
    import torch

    from aebench.infra.device import resolve_device
    from aebench.run.batching import ae_batch_size, feature_batch_size

    config.check()
    resolved = copy.deepcopy(config)
    _type_options(resolved)
    device = resolve_device(config.device)
    gpu = device.type == "cuda"
    if resolved.n is None:
        resolved.n = DEFAULT_N_GPU if gpu else DEFAULT_N_CPU
    if resolved.n_latent is None:
        resolved.n_latent = max(DEFAULT_N_LATENT, resolved.n)
    elif resolved.n_latent < resolved.n:
        raise OptionError(f"--n-latent {resolved.n_latent} is below the default --n {resolved.n} on {device.type}: the "
                          f"decoded images are the first n of the latent points; raise --n-latent or lower --n.")
    if resolved.n_real is None:
        resolved.n_real = DEFAULT_N_REAL_GPU if gpu else DEFAULT_N_REAL_CPU
    fit_seed = int(resolved.seeds[0])
    features = None
    if resolved.needs_images:
        from aebench.plugins import get_registry

        registry = get_registry("feature extractor")
        # one batch size for every extractor of the run: the one that needs the most memory per image sets it
        memory = max(registry.get(name)(resolved.extractor_options(name)).memory_per_image_mb
                     for name in resolved.judges)
        features = feature_batch_size(memory, torch.device(device), given=resolved.feature_batch_size,
                                      batch_memory=resolved.batch_memory)
    return RunPlan(resolved, str(device), resolved.train_latents is not None, fit_seed,
                   plan_hash(resolved, str(device), fit_seed), ae_batch_size(device, resolved.batch_size), features)


def _type_options(config: RunConfig) -> None:
    """Read every given plugin option as its declared type ('32' from `--set` and 32 from TOML or Python
    are one setting: the same document and plan hash)."""
    from aebench.options import typed_options
    from aebench.plugins import get_registry

    if config.dataset is not None:
        config.dataset_options = typed_options(get_registry("dataset").get(config.dataset).Options,
                                               config.dataset_options, owner="dataset")
    samplers = get_registry("sampler")
    for spec in config.samplers:
        spec.options = typed_options(samplers.get(spec.name).Options, spec.options, owner=spec.label)
    for kind, table in (("region", config.region_options), ("metric", config.metric_options)):
        registry = get_registry(kind)
        for name in list(table):
            table[name] = typed_options(registry.get(name).Options, table[name], owner=name)
    if config.needs_images:
        registry = get_registry("feature extractor")
        first, *others = config.judges
        config.feature_options = typed_options(registry.get(first).Options, config.feature_options, owner=first)
        for name in others:
            if name in config.judge_options:
                config.judge_options[name] = typed_options(registry.get(name).Options, config.judge_options[name],
                                                           owner=name)


def plan_hash(config: RunConfig, device: str, fit_seed: int) -> str:
    """sha256 (first 16 hex digits) of the settings that decide the numbers."""
    data = {k: v for k, v in config.to_dict().items() if k not in _NOT_HASHED}
    data.update(device_type=device.split(":")[0], fit_seed=fit_seed)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_summary(plan: RunPlan) -> PlanSection:
    """What the results document records about the plan."""
    return {"hash": plan.hash, "device": plan.device, "n": plan.config.n, "n_latent": plan.config.n_latent,
            "n_real": plan.config.n_real,
            "seeds": plan.seeds, "fit_seed": plan.fit_seed, "latent_files": plan.latent_files,
            "cells": [{"sampler": label, "seed": seed} for label, seed in plan.cells()]}


__all__ = ["RunPlan", "plan_hash", "plan_summary", "resolve_plan"]
