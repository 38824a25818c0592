"""The decision between samplers on results entries built like the runner builds them: each end reached on
purpose (a unique first place, an equivalent group, a trade-off front, still open), and the verdict's
overall ranks agreeing with it."""

from __future__ import annotations

import numpy as np

from aebench.metric import MetricValue
from aebench.results.document import aggregate
from aebench.verdict.decision import RankingMetric, decide, metric_status
from aebench.verdict.equivalence import Margin

FD = RankingMetric("fd", "latent FD", False, Margin(0.03))
COPIES = RankingMetric("copies", "latent copies", False, Margin(0.02, relative=False))


def rows_from(means: dict[str, dict[str, float]], seeds: int = 40, noise: float = 0.5, seed: int = 0):
    """name -> metrics mapping, each metric a mean over `seeds` seeds with Gaussian noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, metrics in means.items():
        per_seed = [{k: MetricValue(float(v + rng.normal(0, noise * (1 if k == "fd" else 0.002))), False)
                     for k, v in metrics.items()} for _ in range(seeds)]
        out[name] = aggregate(per_seed)
    return out


def test_metric_status_prefers_equivalence_inside_the_margin():
    rows = rows_from({"a": {"fd": 100.0}, "b": {"fd": 101.0}, "c": {"fd": 120.0}}, seeds=200, noise=0.5)
    # a and b: intervals apart (n = 200), yet 1% apart, inside the 3% margin: equivalent, not a win
    assert metric_status(rows["a"]["fd"], rows["b"]["fd"], FD) == "equivalent"
    assert metric_status(rows["a"]["fd"], rows["c"]["fd"], FD) == "better"
    assert metric_status(rows["c"]["fd"], rows["a"]["fd"], FD) == "worse"
    no_margin = RankingMetric("fd", "latent FD", False, None)
    assert metric_status(rows["a"]["fd"], rows["b"]["fd"], no_margin) == "better"
    few = rows_from({"a": {"fd": 100.0}, "b": {"fd": 101.0}}, seeds=3, noise=10.0)
    assert metric_status(few["a"]["fd"], few["b"]["fd"], FD) == "open"


def test_a_unique_first_place():
    rows = rows_from({"best": {"fd": 80.0, "copies": 0.0}, "mid": {"fd": 100.0, "copies": 0.0},
                      "bad": {"fd": 200.0, "copies": 0.0}})
    decision = decide(rows, [FD, COPIES], order=["best", "mid", "bad"])
    assert decision.end == "first" and decision.first == "best" and decision.decided
    assert decision.contenders == ["best"] and set(decision.behind) == {"mid", "bad"}


def test_an_equivalent_group_and_who_is_behind_it():
    rows = rows_from({"a": {"fd": 100.0, "copies": 0.0}, "b": {"fd": 100.5, "copies": 0.0},
                      "c": {"fd": 101.0, "copies": 0.001}, "far": {"fd": 150.0, "copies": 0.0}}, seeds=60)
    decision = decide(rows, [FD, COPIES], order=["a", "b", "c", "far"])
    assert decision.end == "equivalent" and decision.first is None
    assert decision.contenders == ["a", "b", "c"] and decision.behind == {"far": "a"}
    assert all(p.kind == "equivalent" for p in decision.pairs)


def test_a_trade_off_front():
    rows = rows_from({"sharp": {"fd": 80.0, "copies": 0.20}, "safe": {"fd": 100.0, "copies": 0.0},
                      "worse": {"fd": 110.0, "copies": 0.05}})
    decision = decide(rows, [FD, COPIES], order=["sharp", "safe", "worse"])
    assert decision.end == "trade_off" and decision.contenders == ["sharp", "safe"]
    (pair,) = decision.pairs
    assert pair.kind == "trade_off" and pair.a_wins == ["fd"] and pair.b_wins == ["copies"]
    assert decision.behind["worse"] == "safe"


def test_still_open_says_what_would_settle_it():
    rows = rows_from({"a": {"fd": 100.0, "copies": 0.0}, "b": {"fd": 102.0, "copies": 0.0}}, seeds=3, noise=3.0)
    decision = decide(rows, [FD, COPIES], order=["a", "b"], seeds={"a": 3, "b": 3})
    assert decision.end == "open" and not decision.decided and len(decision.open_pairs) == 1
    (gaps,) = decision.gaps.values()
    fd = next(g for g in gaps if g.key == "fd")
    assert fd.seeds_needed is not None and fd.seeds_needed > 3
    assert decision.seeds_needed() == max(g.seeds_needed for g in gaps if g.seeds_needed is not None)


def test_no_ranking_metric_decides_nothing():
    assert decide({"a": {}}, [], order=["a"]).end == "none"


def test_a_ladder_that_no_metric_moves_beyond_its_margin_is_named():
    from aebench.verdict.ranking import unguarded_ladders

    def validation(fd_step2, copies_step2):
        return {"metrics": {
            "fd": {"ladders": {"collapse": {"values": [100.0, 104.0, fd_step2]}}},
            "copies": {"ladders": {"memorisation": {"values": [0.0, 0.1, copies_step2]},
                                   "collapse": {"values": [0.0, 0.0, 0.0]}}}}}

    # 3% of 100 is 3: step 2 must move FD by 6 or more; copies by 0.04 or more (absolute margin 0.02)
    assert unguarded_ladders(validation(120.0, 0.3), [FD, COPIES]) == []
    assert unguarded_ladders(validation(105.0, 0.3), [FD, COPIES]) == ["collapse"]
    assert unguarded_ladders(validation(105.0, 0.03), [FD, COPIES]) == ["collapse", "memorisation"]
    no_margin = RankingMetric("fd", "latent FD", False, None)
    assert unguarded_ladders(validation(500.0, 0.3), [no_margin, COPIES]) == ["collapse"]  # no margin, no guard


def test_a_point_value_without_an_interval_decides_nothing():
    # one seed of a metric without a bootstrap (FID recon): the value is a point, and a point cannot
    # tell a real gap from noise, however far apart two points are
    a = {"value": 50.0, "std": None, "low": None, "high": None}
    b = {"value": 90.0, "std": None, "low": None, "high": None}
    assert metric_status(a, b, FD) == "open" and metric_status(b, a, FD) == "open"
    rows = {"x": {"fd": a}, "y": {"fd": b}}
    decision = decide(rows, [FD], order=["x", "y"])
    assert decision.end == "open" and set(decision.contenders) == {"x", "y"}


def test_runaway_draws_make_a_sampler_clearly_worse_on_a_ratio_metric():
    # a flow whose tail draws land at 1e25 now and then (seen on a Fashion-MNIST fit): latent FD per seed
    # 1e20 .. 1e62, against a sampler at 25-27. The raw Student-t interval of the flow's mean spans zero
    # and the pair stayed open; on the log scale (a relative margin compares ratios) the flow is clearly worse
    good = aggregate([{"fd": MetricValue(v, False)} for v in (26.0, 27.0, 25.0, 26.5, 25.5, 26.0)])["fd"]
    runaway = aggregate([{"fd": MetricValue(v, False)} for v in (1e20, 1e62, 1e40, 1e33, 1e51, 1e24)])["fd"]
    assert runaway["low"] < good["high"]  # the raw intervals overlap
    raw = RankingMetric("fd", "latent FD", False, Margin(5.0, relative=False))  # an absolute margin: raw scale
    assert metric_status(good, runaway, raw) == "open"
    assert metric_status(good, runaway, FD) == "better" and metric_status(runaway, good, FD) == "worse"
    decision = decide({"gmm": {"fd": good}, "flow": {"fd": runaway}}, [FD], order=["flow", "gmm"])
    assert decision.end == "first" and decision.first == "gmm" and decision.behind == {"flow": "gmm"}


def test_the_log_scale_keeps_the_relative_margin_and_falls_back_for_non_positive_values():
    from aebench.verdict.decision import ratio_entry

    # one seed: the bootstrap's percentile interval maps through log exactly
    one = {"value": 100.0, "low": 90.0, "high": 112.0}
    logs = ratio_entry(one)
    assert logs is not None and np.allclose([logs["value"], logs["low"], logs["high"]], np.log([100.0, 90.0, 112.0]))
    # 100 vs 102.9 (2.9% apart, tight intervals): inside 3% as before; 100 vs 103.1: outside, and separated
    tight = dict(std=0.0, per_seed=None)
    a = {"value": 100.0, "low": 99.99, "high": 100.01, **tight}
    assert metric_status(a, {"value": 102.9, "low": 102.89, "high": 102.91, **tight}, FD) == "equivalent"
    assert metric_status(a, {"value": 103.1, "low": 103.09, "high": 103.11, **tight}, FD) == "better"
    # a value at or below zero (KID can dip below 0) has no log: the raw scale decides
    assert ratio_entry({"value": 0.5, "low": -0.1, "high": 1.1}) is None
    assert ratio_entry({"per_seed": [1.0, -0.2, 0.4], "value": 0.4, "low": -1, "high": 2}) is None
    assert metric_status({"value": 0.5, "low": -0.1, "high": 1.1}, {"value": 9.0, "low": 8.0, "high": 10.0}, FD) == "better"


def test_an_open_ratio_gap_is_told_as_a_ratio():
    from aebench.verdict.decision import open_pair_texts

    rows = rows_from({"a": {"fd": 100.0}, "b": {"fd": 104.0}}, seeds=3, noise=4.0)
    decision = decide(rows, [FD], order=["a", "b"], seeds={"a": 3, "b": 3})
    assert decision.end == "open"
    (gap,) = next(iter(decision.gaps.values()))
    assert gap.ratio and abs(gap.difference) < 0.2  # a log ratio, not a difference of about 4
    (text,) = open_pair_texts(decision)
    assert "on latent FD: ×" in text and "95%: ×" in text
