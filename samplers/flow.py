"""`flow`: a normalizing flow fitted to the training latents (pythae's MAF/IAF samplers do the same for
VAEs), built on zuko (optional extra: `pip install 'aebench[flows]'`).

zuko over normflows: zuko is maintained (normflows' last release is from 2023), needs only torch and
numpy, and its flows are plain `nn.Module`s whose transform can be inverted on base noise we draw
ourselves, so sampling takes its randomness from the generator aebench passes.

The flow models the whitened coordinates of the principal subspace carrying `variance` of the total
variance (at most n/2 dimensions: with 320 latents a flow over all 64 or 256 directions would spend
its capacity on estimation noise); the remainder is drawn from the residual Gaussian with the spread
real latents show off that subspace (aebench.maths.principal). Training: a seeded `validation` share of the
training latents is held out, Adam on the negative log-likelihood, early stopping after `patience`
epochs without a better held-out likelihood, best weights kept (aebench.maths.density_training).
`fit_info` reports epochs, the best held-out log-likelihood per point and, for scale, that of a single
Gaussian fitted on the same split: a flow that trails it is over-fitting too few latents.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import AebenchError
from aebench.maths.density_training import (
    TrainingSettings,
    auto_batch_size,
    seeded,
    train_early_stopping,
    validation_split,
)
from aebench.maths.principal import fit_principal
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats

INSTALL_HINT = "pip install 'aebench[flows]'"


def gaussian_heldout_loglik(train: torch.Tensor, heldout: torch.Tensor) -> float:
    """Mean log-likelihood per point of `heldout` under the Gaussian fitted to `train` (float64)."""
    train, heldout = train.to(torch.float64), heldout.to(torch.float64)
    mean = train.mean(0)
    cov = torch.cov(train.T).reshape(train.shape[1], train.shape[1])
    cov = cov + 1e-9 * float(cov.diagonal().mean()) * torch.eye(cov.shape[0], dtype=torch.float64)
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    return float(dist.log_prob(heldout).mean())


@dataclass(frozen=True)
class FlowOptions:
    kind: Literal["maf", "nsf"] = option("maf", "masked autoregressive flow (affine) or neural spline flow")
    transforms: int = option(3, "number of flow transforms", min=1)
    hidden: int = option(64, "width of the hidden layers of each transform's network", min=1)
    layers: int = option(2, "hidden layers per transform network", min=1)
    lr: float = option(1e-3, "Adam learning rate", min=0, min_exclusive=True)
    batch_size: int | None = option(None, "mini-batch size; default: an eighth of the training part, within 32-512",
                                    min=1)
    max_steps: int = option(20000, "stop after the epoch that reaches this many optimiser steps (bounds the fit "
                            "time on large sets)", min=1)
    max_epochs: int = option(300, "most passes over the training latents", min=1)
    patience: int = option(15, "epochs without a better held-out likelihood before stopping", min=1)
    weight_decay: float = option(0.0, "Adam weight decay", min=0)
    validation: float = option(0.2, "share of the training latents held out for early stopping", min=0, max=0.9,
                               min_exclusive=True)
    variance: float = option(0.99, "share of the variance the principal subspace carries", min=0, max=1,
                             min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    residual: Literal["cross_validated", "train", "none"] = option(
        "cross_validated", "spread off the subspace: measured out of fold, the training latents' own, or none")
    fit_seed: int = option(0, "seed of the initialisation, the validation split and the shuffles", min=0,
                           max=2**32 - 1)


class FlowSampler(Sampler):
    name = "flow"
    description = "Normalizing flow (zuko MAF/NSF) on the whitened principal coordinates, early-stopped on held-out likelihood."
    Options = FlowOptions

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("zuko") is None:
            return f"needs zuko: {INSTALL_HINT}"
        return None

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise AebenchError(f"Sampler '{self.name}' {reason}.")
        import zuko

        o = self.options
        self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims,
                                            residual=o.residual, seed=o.fit_seed)
        coords, _ = self.subspace.project(train_latents)
        white = (coords / self.subspace.variance.sqrt()).to(torch.float32)
        fit_idx, val_idx = validation_split(white.shape[0], o.validation, o.fit_seed, what=self.name)
        d = self.subspace.dims
        hidden = (o.hidden,) * o.layers
        with seeded(o.fit_seed):
            if o.kind == "maf":
                self.flow = zuko.flows.MAF(features=d, transforms=o.transforms, hidden_features=hidden)
            else:
                self.flow = zuko.flows.NSF(features=d, transforms=o.transforms, hidden_features=hidden)
            batch = auto_batch_size(o.batch_size, len(fit_idx))
            settings = TrainingSettings(lr=o.lr, batch_size=batch, max_epochs=o.max_epochs,
                                        max_steps=o.max_steps, patience=o.patience, weight_decay=o.weight_decay)
            summary = train_early_stopping(self.flow, lambda x: -self.flow().log_prob(x).mean(), white[fit_idx],
                                           white[val_idx], settings, o.fit_seed)
        summary["best_heldout_loglik_whitened"] = -summary.pop("best_heldout_loss")
        summary["final_train_loglik_whitened"] = -summary.pop("final_train_loss")
        summary["gaussian_heldout_loglik_whitened"] = gaussian_heldout_loglik(white[fit_idx], white[val_idx])
        self.fit_info = {"kind": o.kind, **info, **summary}

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        d = self.subspace.dims
        eps = torch.randn(n, d, generator=generator, dtype=torch.float64)
        if n == 0:
            white = eps
        else:
            with torch.no_grad():
                white = self.flow().transform.inv(eps.to(torch.float32)).to(torch.float64)
        if not torch.isfinite(white).all():
            bad = int((~torch.isfinite(white)).any(1).sum())
            raise AebenchError(f"{self.name}: the flow's inverse gave NaN/Inf for {bad} of {n} points; lower lr or "
                               f"transforms and refit.")
        return self.subspace.lift(white * self.subspace.variance.sqrt(), generator)


@hookimpl
def register_samplers(register):
    register(FlowSampler)

