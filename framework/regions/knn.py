"""The `knn` region: the union of k-NN balls around the training latents (the support estimate behind
Kynkäänniemi et al.'s precision). Ball i is centred on training latent i with radius its distance to
its k-th nearest training neighbour; a point's score is min_i ||z - x_i|| / radius_i, so calibration
scales every radius by one factor. All distances go through the chunked `aebench.maths.knn`.

Its model is the training latents' adaptive kernel density (a sample-point estimator, Breiman, Meisel
& Purcell 1977): pick a training latent x_i, add isotropic Gaussian noise with std d_i / sqrt(N),
where d_i is x_i's distance to its nearest other training latent. The noise's norm is then ~d_i (a
chi with N degrees of freedom concentrates at sqrt(N)), so a draw sits as far from its centre as a new
real latent sits from its nearest training latent (d_i is the leave-one-out estimate of that), which is
what the held-out calibration measures. The k-th neighbour radius overshoots it and made the model's own
draws fall outside (docs/measurements.md, "The knn region's model").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.errors import AebenchError, NotFittedError
from aebench.maths.knn import kth_neighbour_distance, kth_neighbour_distances, min_ratio
from aebench.options import option
from aebench.region import Region
from aebench.stats import LatentStats


class KnnRegion(Region):
    """Union of k-NN balls around the training latents."""

    name = "knn"
    description = "union of k-NN balls around the training latents (manifold support, as in k-NN precision)"

    @dataclass(frozen=True)
    class Options:
        k: int = option(3, "neighbour whose distance sets each training latent's ball radius", min=1)

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        n = train_latents.shape[0]
        if self.options.k >= n:
            raise AebenchError(f"Region 'knn' with k={self.options.k} needs more than {self.options.k} training "
                               f"latents, got {n}; lower --set knn.k or encode more training images.")
        self.train = train_latents
        # the radii and the model's kernel scales (nearest-other distances) from one pass over the pairs
        found = kth_neighbour_distances(train_latents, (self.options.k, 1))
        radii = found[self.options.k]
        # duplicate training latents give radius 0; floor it far below the typical radius (no 0/0)
        floor = 1e-9 * max(float(radii.median()), 1e-300)
        self.radii = radii.clamp_min(floor)
        self._bandwidths: torch.Tensor | None = found[1]

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        # points with NaN or Inf components are outside every ball; aebench.maths.knn accepts finite points only
        out = torch.full((z.shape[0],), torch.inf, dtype=torch.float64)
        finite = torch.isfinite(z).all(dim=1)
        if finite.any():
            out[finite] = min_ratio(z[finite], self.train, self.radii)
        return out

    def sample_model(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Kernel density draws: a uniformly chosen training latent x_i plus N(0, (d_i / sqrt(N))^2 I),
        d_i = distance from x_i to its nearest other training latent."""
        if not self._fitted:
            raise NotFittedError("Region 'knn' was used before fit(); call fit(train_latents, stats) first.")
        dim = self.train.shape[1]
        centre = torch.randint(self.train.shape[0], (n,), generator=generator)
        noise = torch.randn(n, dim, generator=generator, dtype=torch.float64)
        return self.train[centre] + noise * (self.bandwidths()[centre] / math.sqrt(dim))[:, None]

    def bandwidths(self) -> torch.Tensor:
        """Kernel offset scale d_i [n_train] of the model: nearest-other-training-latent distances (computed once)."""
        if self._bandwidths is None:
            self._bandwidths = kth_neighbour_distance(self.train, 1)
        return self._bandwidths


@hookimpl
def register_regions(register):
    register(KnnRegion)
