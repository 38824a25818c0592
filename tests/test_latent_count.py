"""Two sample counts per cell: `n_latent` latent points for the latent-space metrics, the first `n` of them
decoded for the image metrics, re-encoding and figures. Images are a subset of the latents, path
samplers' path/t rows follow their points, and a sampler's cap on its draws is respected."""

from __future__ import annotations

import pytest
import torch

from aebench.errors import OptionError
from aebench.metric import FakeSide
from aebench.run import cells, image_pipeline
from aebench.run.cells import CellOptions, build_metrics, decoded_part, fit_sampler, run_cell
from aebench.run.config import DEFAULT_N_LATENT, RunConfig, SamplerSpec
from aebench.run.plan import plan_summary, resolve_plan
from aebench.run.setup import prepare
from aebench.samplers.gaussian import GaussianSampler
from aebench.samplers.interpolate import InterpolateSampler
from aebench.samplers.plane_paths import PlanePathsSampler


def tiny_config(tiny_model, samplers=("gaussian",), n=24, n_latent=200, **extra) -> RunConfig:
    checkpoint, cache = tiny_model
    config = RunConfig(dataset="orl_faces", dataset_options={"size": 32}, checkpoint=str(checkpoint),
                       samplers=[SamplerSpec(s) for s in samplers], n=n, n_latent=n_latent, seeds=[3],
                       features="fast", metrics=["latent_fd", "latent_copies", "region_hits", "reencode", "fid"],
                       regions=["box"], out="unused", cache_dir=str(cache), figures=False, threads=1, **extra)
    config.check()
    return config


@pytest.fixture(scope="module")
def tiny_setup(tiny_model):
    return prepare(tiny_config(tiny_model), quiet=True)


def test_images_are_the_first_n_latents_and_each_metric_records_its_count(tiny_setup, monkeypatch):
    setup = tiny_setup
    fit = fit_sampler(SamplerSpec("gaussian"), setup, 0)
    decoded_inputs = []
    real_decode = image_pipeline.decode
    monkeypatch.setattr(image_pipeline, "decode",
                        lambda s, z, *a, **k: (decoded_inputs.append(z.clone()), real_decode(s, z, *a, **k))[1])
    result = run_cell(fit, 3, setup, build_metrics(setup.config), CellOptions("unused", None, 3))
    assert result.ok, result.error
    drawn = fit.sampler.sample(200, torch.Generator().manual_seed(3)).latents
    assert len(decoded_inputs) == 1 and torch.equal(decoded_inputs[0], drawn[:24])
    assert result.n_latent == 200
    counts = {key: value["n"] for key, value in result.values.items()}
    assert counts["latent_fd"] == counts["latent_copies"] == counts["hit_box"] == 200
    assert counts["fid"] == counts["reencode_ratio"] == 24  # decoded images and their re-encodings
    # the latent metric saw every draw: the same value as scoring all 200 points directly
    fd = build_metrics(setup.config)[0].compute(FakeSide("gaussian", drawn, seed=3), setup.real)["latent_fd"]
    assert result.values["latent_fd"]["value"] == pytest.approx(fd.value, rel=1e-12)


def test_decoded_part_slices_path_and_t_with_their_points():
    z = torch.arange(40.0).reshape(10, 4)
    fake = FakeSide("p", z, path=torch.arange(10) % 3, t=torch.linspace(0, 1, 10), seed=5)
    fake.cache["nearest"] = "for all ten"
    part = decoded_part(fake, 4)
    assert torch.equal(part.latents, z[:4]) and torch.equal(part.path, fake.path[:4]) and torch.equal(part.t, fake.t[:4])
    assert part.seed == 5 and part.cache == {}  # per-sample work of the whole draw is not the part's
    assert decoded_part(fake, 10) is fake and decoded_part(fake, 12) is fake


def test_path_sampler_figures_get_consistent_rows_and_along_t_every_draw(tiny_model, monkeypatch):
    """interpolate (no cap: independent pairs and positions) draws n_latent points; the path strips get the
    decoded n with their own path and t; the hit rate along t reads every draw."""
    setup = prepare(tiny_config(tiny_model, samplers=("interpolate",), n=12, n_latent=90), quiet=True)
    fit = fit_sampler(SamplerSpec("interpolate", options={"pairs": 5}), setup, 0)
    seen = {}
    monkeypatch.setattr(cells, "draw", lambda setup, sampler, fake, along, out, label, drawer: seen.update(fake=fake) or {})
    along = {}
    real_along = cells.along_t
    monkeypatch.setattr(cells, "along_t", lambda s, fake: along.update(n=fake.latents.shape[0], t=fake.t.shape[0])
                        or real_along(s, fake))
    result = run_cell(fit, 3, setup, build_metrics(setup.config), CellOptions("unused", lambda *a: {}, 3))
    assert result.ok, result.error
    assert result.n_latent == 90
    fake = seen["fake"]
    assert fake.images.shape[0] == fake.latents.shape[0] == fake.path.shape[0] == fake.t.shape[0] == 12
    full = fit.sampler.sample(90, torch.Generator().manual_seed(3))
    assert torch.equal(fake.path, full.path[:12]) and torch.equal(fake.t, full.t[:12].float())
    assert along == {"n": 90, "t": 90}
    assert sum(count for _, _, count in result.along_t["box"]) == 90
    assert isinstance(fit.sampler, InterpolateSampler) and fit.sampler.latent_draws(12, 90) == 90


def test_plane_paths_draws_only_the_decoded_points(tiny_setup):
    sampler = PlanePathsSampler()
    assert sampler.latent_draws(128, 4096) == 128  # an even grid: the first n of more would be path 0 only
    fit = fit_sampler(SamplerSpec("plane_paths"), tiny_setup, 0)
    result = run_cell(fit, 3, tiny_setup, build_metrics(tiny_setup.config), CellOptions("unused", None, 3))
    assert result.ok and result.n_latent == 24 and result.values["latent_fd"]["n"] == 24


def test_line_caps_an_even_grid_but_not_random_positions(tiny_setup):
    even = fit_sampler(SamplerSpec("origin_line"), tiny_setup, 0).sampler
    random = fit_sampler(SamplerSpec("origin_line", options={"spacing": "random"}), tiny_setup, 0).sampler
    assert even.latent_draws(24, 200) == 24 and random.latent_draws(24, 200) == 200


class CappedGaussian(GaussianSampler):
    name = "capped_gaussian"
    max_latent_draws = 50


def test_a_samplers_cap_is_respected_and_never_below_n(tiny_setup):
    assert CappedGaussian().latent_draws(24, 200) == 50
    assert CappedGaussian().latent_draws(80, 200) == 80  # never fewer points than are decoded
    assert CappedGaussian().latent_draws(24, 30) == 30
    assert GaussianSampler().latent_draws(24, 200) == 200
    fit = fit_sampler(SamplerSpec("capped_gaussian"), tiny_setup, 0, cls=CappedGaussian)
    result = run_cell(fit, 3, tiny_setup, build_metrics(tiny_setup.config), CellOptions("unused", None, 3))
    assert result.ok and result.n_latent == 50
    assert result.values["latent_fd"]["n"] == 50 and result.values["fid"]["n"] == 24


def test_n_latent_defaults_checks_and_records(tiny_model, tmp_path):
    config = tiny_config(tiny_model, n_latent=None)
    plan = resolve_plan(config)
    assert config.n_latent is None and plan.config.n_latent == DEFAULT_N_LATENT
    assert plan_summary(plan)["n_latent"] == DEFAULT_N_LATENT and plan.config.to_dict()["n_latent"] == DEFAULT_N_LATENT
    config.n = 5000
    assert resolve_plan(config).config.n_latent == 5000  # never fewer latent points than images
    config.n, config.n_latent = 24, 300
    assert resolve_plan(config).hash != plan.hash  # the count decides the numbers
    with pytest.raises(OptionError, match="--n-latent 10 is below --n 24"):
        tiny_config(tiny_model, n_latent=10)
    with pytest.raises(OptionError, match="--n-latent must be a positive integer"):
        tiny_config(tiny_model, n_latent=0)
    from aebench.commands.run import config_from_options

    checkpoint, cache = tiny_model
    assert config_from_options(dataset="orl_faces", checkpoint=str(checkpoint), n=16, n_latent=64,
                               cache_dir=str(cache)).n_latent == 64
    toml = tmp_path / "suite.toml"
    toml.write_text('dataset = "orl_faces"\nn = 16\nn_latent = 640\nsamplers = ["gaussian"]\n')
    assert RunConfig.from_sources(toml).n_latent == 640


def test_the_results_record_both_counts(tiny_model, tmp_path):
    from aebench.run.runner import run_benchmark

    config = tiny_config(tiny_model, samplers=("gaussian", "plane_paths"), n=16, n_latent=100)
    config.out = str(tmp_path / "out")
    doc = run_benchmark(config, quiet=True)
    assert doc["config"]["n"] == 16 and doc["config"]["n_latent"] == 100 and doc["plan"]["n_latent"] == 100
    rows = {row["name"]: row for row in doc["samplers"]}
    assert rows["gaussian"]["n"] == 16 and rows["gaussian"]["n_latent"] == 100
    assert rows["plane_paths"]["n_latent"] == 16  # capped: only the decoded points
    assert rows["gaussian"]["metrics"]["latent_fd"]["n"] == 100 and rows["gaussian"]["metrics"]["fid"]["n"] == 16
    assert [c["n_latent"] for c in doc["cells"]] == [100, 16]
