"""A metric plugin: `mean_norm`, how far samples sit from the origin relative to held-out latents.

Every key a metric returns is declared as a `Column`: the reports, `compare` and the verdict read the
declaration (label, group, unit, better direction, role), never the key's spelling.
"""

from __future__ import annotations

from aebench import Column, FakeSide, Metric, MetricValue, RealSide, hookimpl


class MeanNormRatio(Metric):
    name = "mean_norm"
    description = "Mean latent norm of the samples divided by that of held-out latents (1 = same scale)."
    needs = frozenset({"latents"})
    columns = (
        Column("mean_norm_ratio", "mean norm ratio", None, group="latent", role="info",
               description="1 means samples are as far from the origin as real latents; >1 spread, <1 collapse."),
    )

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        fake_norm = fake.latents.double().norm(dim=1).mean()
        real_norm = real.heldout_latents.double().norm(dim=1).mean()
        return {"mean_norm_ratio": MetricValue(float(fake_norm / real_norm), None, n=len(fake.latents))}


@hookimpl
def register_metrics(register):
    register(MeanNormRatio)
