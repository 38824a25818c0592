"""The run plan: a `RunConfig` with every default and mode resolved once (device, n, n_real, reference
choice, batch sizes, seeds, fit seed, latent-file mode), frozen, plus a hash that names it.

The CLI and the Python API both go through `resolve_plan`; nothing changes the plan afterwards (the
config it holds is a private copy). The hash covers what decides the numbers of a cell, not where or how
fast they are made (output folder, threads, executor, figures), so `--resume` can reuse the cells of an
interrupted run of the same plan and refuse those of another. The cell time limit and `strict` are not
hashed either: a cell that timed out failed, and failed cells run again on `--resume`.

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
from typing import Any

from aebench.run.config import (
    DEFAULT_N_CPU,
    DEFAULT_N_GPU,
    DEFAULT_N_REAL_CPU,
    DEFAULT_N_REAL_GPU,
    RunConfig,
    SamplerSpec,
)

# settings that change where or how fast a run works, never its numbers
_NOT_HASHED = ("out", "threads", "figures", "cache_dir", "cell_timeout", "strict")


@dataclass(frozen=True)
class RunPlan:
    """A resolved run: `config` holds the final values (n, n_real set); `device` is the resolved device
    string; `latent_files` says whether latents come from the user's files instead of encoding a data set."""

    config: RunConfig
    device: str
    latent_files: bool
    fit_seed: int
    hash: str

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


def resolve_plan(config: RunConfig) -> RunPlan:
    """The frozen plan of `config` (which is left as it was)."""
    from aebench.infra.device import resolve_device

    resolved = copy.deepcopy(config)
    device = resolve_device(config.device)
    gpu = device.type == "cuda"
    if resolved.n is None:
        resolved.n = DEFAULT_N_GPU if gpu else DEFAULT_N_CPU
    if resolved.n_real is None:
        resolved.n_real = DEFAULT_N_REAL_GPU if gpu else DEFAULT_N_REAL_CPU
    fit_seed = int(resolved.seeds[0])
    return RunPlan(resolved, str(device), resolved.train_latents is not None, fit_seed,
                   plan_hash(resolved, str(device), fit_seed))


def plan_hash(config: RunConfig, device: str, fit_seed: int) -> str:
    """sha256 (first 16 hex digits) of the settings that decide the numbers."""
    data = {k: v for k, v in config.to_dict().items() if k not in _NOT_HASHED}
    data.update(device_type=device.split(":")[0], fit_seed=fit_seed)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_summary(plan: RunPlan) -> dict[str, Any]:
    """What the results document records about the plan."""
    return {"hash": plan.hash, "device": plan.device, "n": plan.config.n, "n_real": plan.config.n_real,
            "seeds": plan.seeds, "fit_seed": plan.fit_seed, "latent_files": plan.latent_files,
            "cells": [{"sampler": label, "seed": seed} for label, seed in plan.cells()]}
