"""A region plugin: `ball`, a Euclidean ball around the training mean, calibrated like every region.

    aebench --plugin docs/examples/region_plugin.py run --sampler gaussian --region ball --features fast
"""

from __future__ import annotations

import torch

from aebench import LatentStats, Region, hookimpl


class BallRegion(Region):
    name = "ball"
    description = "Euclidean ball around the training mean (radius calibrated on held-out latents)."

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.centre = train_latents.mean(0)

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        # nonconformity: larger = further outside; the base class picks the threshold at which the
        # calibration target (95% by default) of held-out latents is inside
        return (z - self.centre).norm(dim=1)


@hookimpl
def register_regions(register):
    register(BallRegion)
