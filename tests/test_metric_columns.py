"""Every key a built-in metric returns is declared in its `columns`, every declaration is produced, and
the declarations use the shared vocabulary (groups, roles, ladders) consistently with the values."""

from __future__ import annotations

import pytest
import torch

from aebench.metric import LADDERS, Column, FakeSide, Metric, RealSide
from aebench.plugins import get_registry
from aebench.regions.box import BoxRegion
from aebench.stats import compute_stats

GROUPS = {"region", "latent", "image", "image_recon"}
ROLES = {"headline", "diagnostic", "info"}
DIM, D_FEAT = 6, 10


def _points(n: int, d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale


@pytest.fixture(scope="module")
def sides() -> tuple[RealSide, FakeSide]:
    train, held = _points(80, DIM, 0), _points(60, DIM, 1)
    real = RealSide(train, held, compute_stats(train), target=0.9, seed=0)
    box = BoxRegion()
    box.fit(train, real.stats).calibrate(held, 0.9)
    real.regions["box"] = box
    real.reencode_error = torch.full((60,), 0.5)
    real.features, real.extractor, real.reference = _points(40, D_FEAT, 2).abs(), "fast:test", "train"
    real.recon_latents = train[:24]
    real.recon_features = _points(24, D_FEAT, 3).abs()
    z = _points(24, DIM, 4, 1.3)
    fake = FakeSide("s", z, t=torch.linspace(0, 1, 24), features=_points(24, D_FEAT, 5).abs(),
                    reencoded=z + 0.1, seed=0)
    return real, fake


def _builtin_metrics() -> list[type[Metric]]:
    registry = get_registry("metric")
    return [registry.get(name) for name in registry.names()]


def test_every_returned_key_is_declared_and_every_declaration_produced(sides):
    real, fake = sides
    for cls in _builtin_metrics():
        out = cls().compute(fake, real)
        assert out, cls.name
        for key, value in out.items():
            column = cls.column(key)
            assert column is not None, f"{cls.name} returns '{key}' but does not declare it"
            assert column.higher_is_better == value.higher_is_better, (cls.name, key)
            entry = column.for_key(key)
            assert entry["label"] and "*" not in entry["label"], (cls.name, key)
        for column in cls.columns:
            produced = [k for k in out if column.matches(k)]
            assert produced, f"{cls.name} declares '{column.key}' but did not return it"


def test_declarations_use_the_shared_vocabulary():
    for cls in _builtin_metrics():
        assert cls.columns, f"{cls.name} declares no columns"
        keys = [c.key for c in cls.columns]
        assert len(keys) == len(set(keys)), cls.name
        for c in cls.columns:
            assert isinstance(c, Column)
            assert c.group in GROUPS and c.role in ROLES, (cls.name, c.key, c.group, c.role)
            assert set(c.detects) <= set(LADDERS), (cls.name, c.key, c.detects)
            assert c.description, (cls.name, c.key)
            if c.role == "info":
                assert c.higher_is_better is None and not c.detects, (cls.name, c.key)
            else:
                assert c.higher_is_better is not None, (cls.name, c.key)
            if c.role == "headline":
                assert c.detects, f"headline {c.key} claims no ladder, so nothing could validate it"


def test_roles_the_verdict_relies_on():
    """Hit rates and latent recall reward collapse or spread: never headline; the image metrics against
    real images are decoder + sampler quality; nn_distance_ratio is the memorisation diagnostic."""
    columns = {c.key: c for cls in _builtin_metrics() for c in cls.columns}
    for key in ("hit_*", "latent_recall", "latent_coverage", "latent_precision", "latent_density", "fid", "kid"):
        assert columns[key].role == "diagnostic", key
    assert columns["fid"].group == columns["kid"].group == "image"
    assert columns["nn_distance_ratio"].detects == ("memorisation",)
    assert columns["nn_distance"].role == columns["reencode_error"].role == "info"
    assert columns["hit_*"].unit == "rate" and columns["hit_*"].group == "region"
