"""The 1-nearest-neighbour two-sample test (Lopez-Paz & Oquab 2017; used for generative models by Xu et
al. 2018): pool two equal-size sets, classify every point by the set of its nearest other point
(leave-one-out), and report the accuracy. 0.5 means the sets are indistinguishable at the scale of
nearest neighbours; 1.0 means every point's neighbour is from its own set (the sets are apart, or one
is bunched up). Being local, it sees differences of shape that means and covariances miss.

The pooled accuracy averages the two sets' accuracies, and in high dimension that average hides points
far from the data (their nearest neighbours are real points, so uniform noise can score a perfect 0.5;
docs/measurements.md, "The 1-NN two-sample test"). `worst_accuracy`, the larger of the two per-set
accuracies, is 0.5 only when both sets find their neighbours evenly in either set: it rises with collapse
(samples find samples) as with spread (real points find real points).

Distances come from the exact chunked k-NN of `aebench.maths.knn`; a point whose nearest neighbours in both
sets are exactly equally far counts as half right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench.errors import DataError
from aebench.maths.knn import kth_neighbour_distance, nearest_distance


@dataclass(frozen=True)
class OneNNResult:
    accuracy: float  # over both sets
    real_accuracy: float  # share of real points whose nearest other point is real
    fake_accuracy: float  # share of fake points whose nearest other point is fake

    @property
    def worst_accuracy(self) -> float:
        """The larger per-set accuracy: the set that is easier to tell apart."""
        return max(self.real_accuracy, self.fake_accuracy)


def _correct(own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    return (own < other).double() + 0.5 * (own == other).double()


def one_nn_accuracy(real: torch.Tensor, fake: torch.Tensor, *, real_own: torch.Tensor | None = None) -> OneNNResult:
    """Leave-one-out 1-NN accuracy of equal-size sets real, fake [m, d]. `real_own` is the distance of each
    real point to its nearest other real point (`kth_neighbour_distance(real, 1)`), reusable across fakes."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape != fake.shape:
        raise DataError(f"1-NN accuracy needs two sets of one shape, got {tuple(real.shape)} and {tuple(fake.shape)}; "
                        f"subsample the larger set.")
    if real.shape[0] < 2:
        raise DataError(f"1-NN accuracy needs at least 2 points per set, got {real.shape[0]}.")
    if real_own is None:
        real_own = kth_neighbour_distance(real, 1)
    fake_own = kth_neighbour_distance(fake, 1)
    real_other, _ = nearest_distance(real, fake)
    fake_other, _ = nearest_distance(fake, real)
    r = _correct(real_own.to(real_other.device), real_other)
    f = _correct(fake_own, fake_other)
    return OneNNResult(float(torch.cat([r, f]).mean()), float(r.mean()), float(f.mean()))
