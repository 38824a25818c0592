"""`vae2`: a second-stage VAE on the latents (Dai & Wipf 2019, "Diagnosing and enhancing VAE models").

A small MLP VAE is trained on the training latents; sampling draws u ~ N(0, I) from its prior and
returns the decoder's mean, a latent of the AE. As in Dai & Wipf the decoder's output variance gamma
is a learned scalar (p(z | u) = N(f(u), gamma I)), which lets the second stage match the latents'
distribution closely, and the second-stage latent has as many dimensions as its input unless
`latent` says otherwise. Dai & Wipf return the decoder's mean f(u), which is exact when gamma has
shrunk towards 0; with few latents it does not, and the mean alone then collapses every sample onto the
centre (docs/measurements.md, "vae2"). So by default (`output=sample`) a sample is a draw of the whole
generative model, f(u) + sqrt(gamma) eps; `output=mean` gives Dai & Wipf's decoder mean.

Like `flow`, the VAE models the whitened coordinates of the principal subspace carrying `variance` of
the total variance; the remainder off it comes from the residual Gaussian (aebench.maths.principal).
Training holds out a seeded `validation` share of the training latents, raises the KL weight from 0
to 1 over the first `warmup` epochs (without it the second stage sat in the collapsed optimum), and then
stops early on the held-out negative ELBO (averaged over `eval_draws` reparameterised draws), keeping the
best weights (aebench.maths.density_training).
`fit_info` reports epochs, the best held-out ELBO per point (a lower bound of the log-likelihood) and,
for scale, a single Gaussian's held-out log-likelihood on the same split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from aebench import hookimpl
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
from aebench.samplers.flow import gaussian_heldout_loglik
from aebench.stats import LatentStats

_LOG_2PI = math.log(2 * math.pi)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SecondStageVae(nn.Module):
    """Gaussian encoder q(u | z), Gaussian decoder p(z | u) = N(f(u), gamma I) with a learned scalar gamma."""

    def __init__(self, dim: int, latent: int, hidden: int, layers: int, eval_draws: int):
        super().__init__()
        self.latent = latent
        self.eval_draws = eval_draws
        self.encoder = _mlp([dim] + [hidden] * layers + [2 * latent])
        self.decoder = _mlp([latent] + [hidden] * layers + [dim])
        self.log_gamma = nn.Parameter(torch.zeros(()))
        self.beta = 1.0  # weight of the KL term while training (warm-up); evaluation always uses 1

    def negative_elbo(self, z: torch.Tensor) -> torch.Tensor:
        """Mean over points of -ELBO (nats per point); several draws of u when evaluating."""
        mu, log_var = self.encoder(z).chunk(2, dim=1)
        log_var = log_var.clamp(-12, 8)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        draws = 1 if self.training else self.eval_draws
        recon = 0.0
        for _ in range(draws):
            u = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
            err = (z - self.decoder(u)).pow(2).sum(1)
            recon = recon + 0.5 * (err / self.log_gamma.exp() + z.shape[1] * (self.log_gamma + _LOG_2PI))
        beta = self.beta if self.training else 1.0
        return (beta * kl + recon / draws).mean()


@dataclass(frozen=True)
class Vae2Options:
    output: Literal["sample", "mean"] = option(
        "sample", "sample: f(u) + sqrt(gamma) noise, a draw of the generative model; mean: the decoder mean f(u)")
    latent: int | None = option(None, "second-stage latent dimension; default: the principal subspace's", min=1)
    hidden: int = option(128, "width of the hidden layers", min=1)
    layers: int = option(2, "hidden layers of the encoder and of the decoder", min=1)
    lr: float = option(1e-3, "Adam learning rate", min=0, min_exclusive=True)
    batch_size: int | None = option(None, "mini-batch size; default: an eighth of the training part, within 32-512",
                                    min=1)
    max_steps: int = option(20000, "stop after the epoch that reaches this many optimiser steps (bounds the fit "
                            "time on large sets)", min=1)
    max_epochs: int = option(400, "most passes over the training latents", min=1)
    patience: int = option(20, "epochs without a better held-out ELBO before stopping", min=1)
    warmup: int = option(20, "epochs over which the KL weight rises from 0 to 1 (avoids posterior collapse); "
                         "early stopping starts after them", min=0)
    eval_draws: int = option(4, "draws of the second-stage latent per held-out point when evaluating", min=1)
    validation: float = option(0.2, "share of the training latents held out for early stopping", min=0, max=0.9,
                               min_exclusive=True)
    variance: float = option(0.99, "share of the variance the principal subspace carries", min=0, max=1,
                             min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    residual: Literal["cross_validated", "train", "none"] = option(
        "cross_validated", "spread off the subspace: measured out of fold, the training latents' own, or none")
    fit_seed: int = option(0, "seed of the initialisation, the validation split, shuffles and training noise",
                           min=0, max=2**32 - 1)


class Vae2Sampler(Sampler):
    name = "vae2"
    description = "Second-stage VAE on the latents (Dai & Wipf 2019): prior draws decoded to latents."
    Options = Vae2Options

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        o = self.options
        self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims,
                                            residual=o.residual, seed=o.fit_seed)
        coords, _ = self.subspace.project(train_latents)
        white = (coords / self.subspace.variance.sqrt()).to(torch.float32)
        fit_idx, val_idx = validation_split(white.shape[0], o.validation, o.fit_seed, what=self.name)
        d = self.subspace.dims
        latent = o.latent or d
        with seeded(o.fit_seed):
            self.vae = SecondStageVae(d, latent, o.hidden, o.layers, o.eval_draws)
            batch = auto_batch_size(o.batch_size, len(fit_idx))
            settings = TrainingSettings(lr=o.lr, batch_size=batch, max_epochs=o.max_epochs,
                                        max_steps=o.max_steps, patience=o.patience, warmup_epochs=o.warmup)
            summary = train_early_stopping(self.vae, self.vae.negative_elbo, white[fit_idx], white[val_idx], settings,
                                           o.fit_seed, on_epoch=self._warm_up)
        summary["best_heldout_elbo_whitened"] = -summary.pop("best_heldout_loss")
        summary["final_train_elbo_whitened"] = -summary.pop("final_train_loss")
        summary["gaussian_heldout_loglik_whitened"] = gaussian_heldout_loglik(white[fit_idx], white[val_idx])
        summary["gamma"] = float(self.vae.log_gamma.detach().exp())
        self.fit_info = {"latent": latent, "output": o.output, **info, **summary}

    def _warm_up(self, epoch: int) -> None:
        warmup = self.options.warmup
        self.vae.beta = 1.0 if warmup == 0 else min(1.0, (epoch - 1) / warmup)

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.randn(n, self.vae.latent, generator=generator, dtype=torch.float64)
        with torch.no_grad():
            white = self.vae.decoder(u.to(torch.float32)).to(torch.float64)
        if self.options.output == "sample":
            noise = torch.randn(n, white.shape[1], generator=generator, dtype=torch.float64)
            white = white + noise * float(self.vae.log_gamma.detach().exp().sqrt())
        return self.subspace.lift(white * self.subspace.variance.sqrt(), generator)


@hookimpl
def register_samplers(register):
    register(Vae2Sampler)
