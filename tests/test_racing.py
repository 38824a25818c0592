"""Racing rounds (`aebench run --decide`) on samplers of known quality.

The real latents are drawn from a known distribution P (a mixture of eight Gaussians in the tiny model's
16-dimensional latent space) and decoded by the tiny model, so a sampler that draws fresh points from P is
known to be the best possible, and each degraded sampler is known to be worse: P degraded as the second
step of every known-answer ladder (collapse, spread, contamination, dropped modes, same moments but the
wrong shape, memorisation). Every end of a race is reached on purpose, and a race is deterministic,
resumable mid-way, and the same on Dask."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import aebench.plugins
from aebench import Sampler, hookimpl, option
from aebench.errors import OptionError
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.racing import Budget, next_seed_count
from aebench.run.runner import run_benchmark
from aebench.verdict.decision import compare_rows
from aebench.verdict.ranking import judge

DIM, COMPONENTS = 16, 8
_rng = np.random.default_rng(7)
MEANS = _rng.normal(0, 3.0, (COMPONENTS, DIM))
SCALES = _rng.uniform(0.5, 1.2, (COMPONENTS, DIM))


def draw_p(n: int, generator: torch.Generator, components: int = COMPONENTS) -> torch.Tensor:
    """n points of P (or of its first `components` components only, equally weighted)."""
    k = torch.randint(components, (n,), generator=generator)
    noise = torch.randn(n, DIM, generator=generator, dtype=torch.float64)
    return (torch.as_tensor(MEANS)[k] + torch.as_tensor(SCALES)[k] * noise).float()


class Truth(Sampler):
    name = "truth"
    description = "fresh draws from P, the distribution the real latents come from"

    @dataclass(frozen=True)
    class Options:
        stream: int = option(0, "offset of the random stream (a second truth with other draws)", min=0)

    def _fit(self, train_latents, stats):
        self.train = train_latents.float()
        self.mean = self.train.mean(0)

    def _draw(self, n, generator):
        for _ in range(self.options.stream):
            torch.randn(7, generator=generator)
        return draw_p(n, generator)

    def _sample(self, n, generator):
        return self._draw(n, generator)


def _share(n: int, generator: torch.Generator, share: float) -> torch.Tensor:
    return torch.randperm(n, generator=generator)[: int(round(share * n))]


class Degraded(Truth):
    """P degraded as the second step (of six) of a known-answer ladder."""

    ladder = ""

    def _sample(self, n, generator):
        z = self._draw(n, generator)
        if self.ladder == "collapse":  # shrink factor 0.64 towards the centre
            return self.mean + 0.64 * (z - self.mean)
        if self.ladder == "spread":  # factor 1.8
            return self.mean + 1.8 * (z - self.mean)
        if self.ladder == "mode_drop":  # 3 of 8 modes dropped, their points drawn from the others
            return draw_p(n, generator, components=5)
        rows = _share(n, generator, 0.4)
        if self.ladder == "contamination":  # 40% uniform over the training latents' range
            lo, hi = self.train.min(0).values, self.train.max(0).values
            z[rows] = lo + (hi - lo) * torch.rand(len(rows), DIM, generator=generator)
        elif self.ladder == "moments":  # 40% from the Gaussian with P's mean and covariance
            centred = self.train - self.mean
            chol = torch.linalg.cholesky(centred.T @ centred / (len(centred) - 1))
            z[rows] = self.mean + torch.randn(len(rows), DIM, generator=generator) @ chol.T
        elif self.ladder == "memorisation":  # 40% copies of training latents
            z[rows] = self.train[torch.randint(len(self.train), (len(rows),), generator=generator)]
        return z


LADDER_SAMPLERS = {}
for _ladder in ("collapse", "spread", "contamination", "mode_drop", "moments", "memorisation"):
    LADDER_SAMPLERS[_ladder] = type(f"Degraded_{_ladder}", (Degraded,), {
        "name": f"{_ladder}2", "ladder": _ladder, "description": f"P at the second step of the {_ladder} ladder"})


class Replay(Truth):
    name = "replay"
    description = "training latents replayed with 1% noise"

    def _sample(self, n, generator):
        rows = torch.randint(len(self.train), (n,), generator=generator)
        return self.train[rows] + 0.01 * self.train.std(0) * torch.randn(n, DIM, generator=generator)


class Plugin:
    @hookimpl
    def register_samplers(self, register):
        for cls in (Truth, Replay, *LADDER_SAMPLERS.values()):
            register(cls)


@pytest.fixture
def known(tiny_model, tmp_path_factory):
    """Latent files drawn from P (400 training, 300 held-out latents) and the plugin with the samplers."""
    aebench.plugins.get_plugin_manager().register(Plugin(), name="known-quality-samplers")
    folder = tmp_path_factory.mktemp("p-latents")
    gen = torch.Generator().manual_seed(123)
    for name, count in (("train", 400), ("heldout", 300)):
        np.save(folder / f"{name}.npy", draw_p(count, gen).numpy())
    return tiny_model, folder


LATENT_METRICS = ["latent_fd", "latent_mmd", "latent_1nn", "latent_copies"]
# two draws of the truth and a clear loser: a race of several rounds that ends in an equivalence
TWO_TRUTHS = [SamplerSpec("truth"), SamplerSpec("truth", "truth_b", {"stream": 1}), SamplerSpec("collapse2")]
CLOSE = {"budget": "8000", "margins": {"latent_fd": "0.5"}}


def race_config(known, out, samplers, budget="20000", seeds=(0,), **extra) -> RunConfig:
    (checkpoint, cache), folder = known
    specs = [s if isinstance(s, SamplerSpec) else SamplerSpec(s) for s in samplers]
    config = RunConfig(dataset=None, train_latents=str(folder / "train.npy"),
                       heldout_latents=str(folder / "heldout.npy"), checkpoint=str(checkpoint), samplers=specs,
                       n=128, seeds=list(seeds), metrics=LATENT_METRICS, out=str(out), cache_dir=str(cache),
                       figures=False, threads=1, **{"decide": True, "budget": budget, **extra})
    config.check()
    return config


def decision_of(doc):
    return judge(doc).decision


def without_clock(doc):
    """The document without wall-clock times (cells' timings go in numbers_only; the race's here)."""
    from test_cells import numbers_only

    out = numbers_only(doc)
    out["race"].pop("spent_seconds", None)
    for r in out["race"]["rounds"]:
        r.pop("seconds", None)
    return out


def test_the_truth_is_first_and_no_degraded_sample_is_ever_equivalent_to_it(known, tmp_path):
    samplers = ["truth", *(f"{ladder}2" for ladder in LADDER_SAMPLERS)]
    doc = run_benchmark(race_config(known, tmp_path / "out", samplers), quiet=True)
    decision = decision_of(doc)
    assert doc["race"]["stopped"] == "decided", doc["race"]
    assert decision.end == "first" and decision.first == "truth", (decision.end, decision.contenders)
    rows = {r["name"]: r["metrics"] for r in doc["samplers"]}
    every = compare_rows(rows, decision.metrics)
    for ladder in LADDER_SAMPLERS:
        pair = every[("truth", f"{ladder}2")]
        assert pair.kind == "a_ahead", (ladder, pair.statuses)  # better on some metric, worse on none
    # the losers left the race early and kept their numbers, marked with the round they left
    left = {r["name"]: r.get("left_round") for r in doc["samplers"]}
    assert left["truth"] is None and all(left[f"{ladder}2"] is not None for ladder in LADDER_SAMPLERS)
    truth_seeds = len({r["name"]: r for r in doc["samplers"]}["truth"]["seeds"])
    assert all(len(r["seeds"]) <= truth_seeds for r in doc["samplers"])


def test_two_draws_of_the_truth_end_equivalent_within_the_margins(known, tmp_path):
    """Here the latent FD of good samples is its small-sample bias, about 3: a relative margin of a few
    percent of that asks for thousands of seeds, so the test states an absolute one (`--margin`)."""
    specs = [SamplerSpec("truth"), SamplerSpec("truth", "truth_b", {"stream": 1}), SamplerSpec("spread2")]
    doc = run_benchmark(race_config(known, tmp_path / "out", specs, budget="20000", margins={"latent_fd": "0.5"}),
                        quiet=True)
    decision = decision_of(doc)
    assert decision.end == "equivalent" and sorted(decision.contenders) == ["truth", "truth_b"], doc["race"]
    assert decision.behind["spread2"] in ("truth", "truth_b")
    assert doc["race"]["stopped"] == "decided" and len(doc["race"]["rounds"]) >= 2
    assert doc["race"]["spent_images"] <= 20000


def test_a_trade_off_is_stated_as_such(known, tmp_path):
    doc = run_benchmark(race_config(known, tmp_path / "out", ["replay", "collapse2"]), quiet=True)
    decision = decision_of(doc)
    assert decision.end == "trade_off", (decision.end, [p.statuses for p in decision.pairs])
    (pair,) = decision.pairs
    replay_wins = pair.a_wins if pair.a == "replay" else pair.b_wins
    collapse_wins = pair.b_wins if pair.a == "replay" else pair.a_wins
    assert "latent_copies" in collapse_wins and "latent_copies" not in replay_wins and replay_wins


def test_a_spent_budget_says_what_is_open_and_what_would_settle_it(known, tmp_path):
    specs = [SamplerSpec("truth"), SamplerSpec("truth", "truth_b", {"stream": 1})]
    doc = run_benchmark(race_config(known, tmp_path / "out", specs, budget="640"), quiet=True)
    race = doc["race"]
    assert race["stopped"] == "budget" and race["spent_images"] <= 640
    assert decision_of(doc).end == "open"
    assert race["seeds_needed"] is not None and race["seeds_needed"] > 3 and race["images_needed"] > 0


def test_the_same_seed_and_image_budget_give_the_same_document(known, tmp_path):
    a = run_benchmark(race_config(known, tmp_path / "a", TWO_TRUTHS, **CLOSE), quiet=True)
    b = run_benchmark(race_config(known, tmp_path / "b", TWO_TRUTHS, **CLOSE), quiet=True)
    assert len(a["race"]["rounds"]) >= 3
    assert without_clock(a) == without_clock(b)


def test_a_race_resumes_mid_way_and_ends_as_an_uninterrupted_one(known, tmp_path):
    whole = run_benchmark(race_config(known, tmp_path / "out", TWO_TRUTHS, **CLOSE), quiet=True)
    assert len(whole["race"]["rounds"]) >= 3
    # interrupted in round 3: the cells of rounds 1 and 2 (seeds 0-2) and one of round 3 made it to disk
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    doc["cells"] = [c for c in doc["cells"] if c["seed"] <= 2] + [c for c in doc["cells"] if c["seed"] == 3][:1]
    doc["status"], doc["finished"] = "running", None
    doc.pop("race")
    (tmp_path / "out" / "results.json").write_text(json.dumps(doc))
    resumed = run_benchmark(race_config(known, tmp_path / "out", TWO_TRUTHS, **CLOSE), quiet=True, resume=True)
    assert resumed["plan"]["cells_reused"] == len(doc["cells"])
    assert resumed["plan"]["cells_computed"] == len(whole["cells"]) - len(doc["cells"])
    assert without_clock(resumed) == without_clock(whole)


def test_a_race_on_dask_equals_the_local_one(known, tmp_path):
    pytest.importorskip("distributed")
    from aebench.executors import make_executor

    local = run_benchmark(race_config(known, tmp_path / "local", TWO_TRUTHS, **CLOSE), quiet=True)
    dask = run_benchmark(race_config(known, tmp_path / "dask", TWO_TRUTHS, **CLOSE), quiet=True,
                         executor=make_executor("dask", workers=2))
    assert len(local["race"]["rounds"]) >= 3
    assert without_clock(dask) == without_clock(local)


def test_a_race_document_is_declared_field_by_field(known, tmp_path):
    from aebench.results.schema import ResultsDocument
    from aebench.testing import shape_mismatches

    doc = run_benchmark(race_config(known, tmp_path / "out", TWO_TRUTHS, **CLOSE), quiet=True)
    assert doc["race"]["rounds"] and any("left_round" in r for r in doc["samplers"])
    assert shape_mismatches(json.loads((tmp_path / "out" / "results.json").read_text()), ResultsDocument) == []


def test_budgets_parse_and_bad_ones_are_refused():
    assert Budget.parse("15m").seconds == 900 and Budget.parse("1h30m").seconds == 5400
    assert Budget.parse("900s").seconds == 900 and Budget.parse("20000").images == 20000
    assert Budget.parse("5000 images").images == 5000 and Budget.parse(None) == Budget()
    for bad in ("15 minutes", "0", "-3m", "fast"):
        with pytest.raises(OptionError, match="budget"):
            Budget.parse(bad)
    assert [next_seed_count(k) for k in (1, 2, 3, 6)] == [3, 3, 6, 12]


def test_racing_settings_are_checked_before_any_work(known, tmp_path):
    with pytest.raises(OptionError, match="--budget needs --decide"):
        race_config(known, tmp_path, ["truth"], decide=False)
    with pytest.raises(OptionError, match="no selected metric declares the key 'latent_fdd'.*latent_fd"):
        race_config(known, tmp_path, ["truth"], margins={"latent_fdd": "3%"})
    with pytest.raises(OptionError, match="margin"):
        race_config(known, tmp_path, ["truth"], margins={"latent_fd": "three"})
