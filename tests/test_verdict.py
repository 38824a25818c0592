"""The verdict: which metrics may rank samplers on a run and the ranking they give. Documents come
from real tiny runs (tests/conftest.py `toy_run`), with values set where a case needs them."""

from __future__ import annotations

import pytest

from aebench.reports.table import build_table
from aebench.results.schema import check_results
from aebench.testing import row_of, set_value
from aebench.verdict.ranking import (
    NOT_ON_THIS_MODEL,
    Estimate,
    badness,
    clearly_better,
    directed,
    format_rank,
    judge,
    metric_order,
    rank_ranges,
)


def spread_values(doc, key, values):
    """{sampler: (value, low, high) or value} for every sampler row."""
    for name, v in values.items():
        if isinstance(v, tuple):
            set_value(doc, name, key, *v)
        else:
            set_value(doc, name, key, v)
    return doc


FIVE = {"gaussian": (1.0, 0.9, 1.1), "correlated": (1.05, 0.95, 1.15), "origin_line": (2.0, 1.9, 2.1),
        "plane_conditional": (3.0, 2.9, 3.1), "uniform": (3.05, 3.0, 3.2)}


def test_rank_ranges_and_clear_separation():
    a, b, c = Estimate(1.0, 0.9, 1.1, True), Estimate(1.1, 1.1, 1.2, True), Estimate(2.0, 1.5, 2.5, True)
    assert not clearly_better(a, b, False)  # touching intervals are not apart
    assert clearly_better(a, c, False) and clearly_better(c, a, True)
    assert rank_ranges({"a": a, "b": b, "c": c}, higher_is_better=False) == {"a": (1, 2), "b": (1, 2), "c": (3, 3)}
    assert format_rank((1, 2)) == "1–2" and format_rank((3, 3)) == "3"


def test_a_declared_ideal_point_ranks_by_the_distance_to_it(toy_run):
    """A metric whose best value is a point (Column.ideal, e.g. latent_1nn's 0.5) ranks by |value - ideal|:
    0.45 beats 0.62, and an interval that holds the ideal is 0 away at its near end."""
    far, holds = Estimate(0.62, 0.6, 0.64, True).distance_to(0.5), Estimate(0.52, 0.45, 0.6, True).distance_to(0.5)
    assert (far.value, far.low, far.high) == pytest.approx((0.12, 0.1, 0.14)) and far.has_interval
    assert (holds.value, holds.low, holds.high) == pytest.approx((0.02, 0.0, 0.1))
    info = {"higher_is_better": False, "ideal": 0.5}
    assert directed(Estimate(0.4, 0.4, 0.4, False), info)[1] is False and badness(0.4, info) == pytest.approx(0.1)
    assert badness(3.0, {"higher_is_better": True}) == -3.0
    values = {"gaussian": (0.62, 0.6, 0.64), "correlated": (0.45, 0.43, 0.47), "origin_line": (0.3, 0.29, 0.31),
              "plane_conditional": (0.58, 0.575, 0.585), "uniform": (1.0, 0.99, 1.0)}
    doc = spread_values(toy_run(), "radius_error", values)
    doc["metric_info"]["radius_error"]["ideal"] = 0.5
    m = judge(doc).metrics["radius_error"]
    assert m.ranks == {"correlated": (1, 1), "plane_conditional": (2, 2), "gaussian": (3, 3), "origin_line": (4, 4),
                       "uniform": (5, 5)}
    assert metric_order(doc, m) == ["correlated", "plane_conditional", "gaussian", "origin_line", "uniform"]
    del doc["metric_info"]["radius_error"]["ideal"]  # plain lower-is-better: 0.3 (0.2 off) would lead
    assert judge(doc).metrics["radius_error"].ranks["origin_line"] == (1, 1)


def test_overlapping_intervals_share_ranks_instead_of_a_false_winner(toy_run):
    doc = spread_values(toy_run(), "radius_error", FIVE)
    v = judge(doc)
    m = v.metrics["radius_error"]
    assert m.status == "ranks" and m.with_intervals
    assert m.ranks == {"gaussian": (1, 2), "correlated": (1, 2), "origin_line": (3, 3), "plane_conditional": (4, 5),
                       "uniform": (4, 5)}
    assert m.best == {"gaussian", "correlated"}  # a tie at the top, not gaussian alone
    assert v.overall == m.ranks and v.order[:2] == ["gaussian", "correlated"] and v.order[2] == "origin_line"
    assert v.basis == f"Ranked by radius error: {NOT_ON_THIS_MODEL}."
    table = build_table(doc)
    assert table.top_line().startswith("Not decided yet between gaussian, correlated: 1 pair(s) still open (for "
                                       "instance gaussian vs correlated on radius error: ")
    assert [r.name for r in table.rows if r.best] == ["gaussian", "correlated"]


def test_one_clear_leader_and_point_values_are_flagged(toy_run):
    doc = spread_values(toy_run(), "radius_error", {**FIVE, "gaussian": (0.5, 0.45, 0.55)})
    v = judge(doc)
    assert v.metrics["radius_error"].best == {"gaussian"} and v.overall["gaussian"] == (1, 1)
    assert build_table(doc).top_line().startswith("Use gaussian: no other sampler is ahead of it")
    no_intervals = spread_values(toy_run(), "radius_error", {k: t[0] for k, t in FIVE.items()})
    v = judge(no_intervals)
    assert v.metrics["radius_error"].ranks["gaussian"] == (1, 1) and not v.metrics["radius_error"].with_intervals
    assert any("No interval for radius error" in note and "--seeds" in note for note in v.notes)


def test_when_every_interval_overlaps_nobody_is_best(toy_run):
    doc = spread_values(toy_run(), "radius_error", {k: (1.0 + 0.01 * i, 0.5, 1.5) for i, k in enumerate(FIVE)})
    v = judge(doc)
    assert set(v.metrics["radius_error"].ranks.values()) == {(1, 5)} and not v.best
    assert any("no sampler is clearly ahead" in note for note in v.notes)
    assert not any(r.best for r in build_table(doc).rows)


def test_validation_decides_which_headline_metrics_rank(toy_run):
    doc = spread_values(toy_run(), "radius_error", FIVE)
    doc["validation"] = {
        "settings": {"size": 64, "seed": 0},
        "ladders": {"collapse": {"param": "shrink factor towards the centre", "levels": [1.0, 0.5, 0.1]}},
        "metrics": {"radius_error": {
            "detects": ["collapse", "spread"], "verdict": "broken", "trusted_for": ["spread"],
            "ladders": {"collapse": {"values": [0.1, 0.3, 0.2], "spearman": 0.42, "verdict": "broken"},
                        "spread": {"values": [0.1, 0.5, 0.9], "spearman": 1.0, "verdict": "holds"},
                        # not claimed: broken by design (copies are real data), never a reason
                        "memorisation": {"values": [0.9, 0.5, 0.1], "spearman": -1.0, "verdict": "broken"}}}},
        "uncovered": ["collapse"],
    }
    check_results(doc)
    v = judge(doc)
    m = v.metrics["radius_error"]
    assert m.status == "untrusted" and not m.ranks and not m.best
    assert m.reason == "broken on this model's validation: broken on collapse (ρ 0.42)"
    assert v.basis.startswith("No metric ranks") and v.uncovered == ["collapse"] and not v.order

    doc["validation"]["metrics"]["radius_error"].update(verdict="holds", trusted_for=["collapse", "spread"])
    doc["validation"]["metrics"]["radius_error"]["ladders"]["collapse"].update(spearman=0.97, verdict="holds")
    v = judge(doc)
    assert v.metrics["radius_error"].status == "ranks"
    assert v.metrics["radius_error"].reason == "held on this model for collapse, spread"
    assert v.basis == "Ranked by radius error: they held on this model's known-answer ladders."
    # a ladder no ranking metric sees is named in the basis: ties and order say nothing about it
    doc["validation"]["uncovered"] = ["moments"]
    assert judge(doc).order == v.order and len(v.order) == 5  # the samplers' order, untouched by the sentence
    # a recommendation names what it cannot see
    set_value(doc, "gaussian", "radius_error", 0.5, 0.45, 0.55)
    top = build_table(doc).top_line()
    assert top.startswith("Use gaussian: ")
    assert top.endswith(" Nothing trusted here judges moments: choose on those by other means.")
    assert judge(doc).basis == ("Ranked by radius error: they held on this model's known-answer ladders. That ranking "
                                "sees only collapse, spread: it says nothing about moments, which no metric trusted "
                                "here detects.")

    del doc["validation"]["metrics"]["radius_error"]
    assert judge(doc).metrics["radius_error"].reason == "not checked by this run's validation"


def test_image_metrics_of_an_unvalidated_extractor_never_rank(toy_run):
    doc = toy_run()
    assert doc["features"]["extractor"] == "fast" and doc["features"]["judge"] is False
    m = judge(doc).metrics["feature_gap"]
    assert m.status == "untrusted" and "'fast' is not a validated judge" in m.reason
    doc["features"]["judge"] = True
    assert judge(doc).metrics["feature_gap"].status == "ranks"


def test_a_sampler_is_ahead_overall_only_when_worse_on_no_ranking_metric(toy_run):
    doc = spread_values(toy_run(), "radius_error", {**FIVE, "gaussian": (0.5, 0.45, 0.55)})
    doc["features"]["judge"] = True  # let the image-group toy metric rank too
    # gaussian leads on radius error but trails correlated on feature gap: neither is ahead of the other
    spread_values(doc, "feature_gap", {"gaussian": (5.0, 4.9, 5.1), "correlated": (1.0, 0.9, 1.1),
                                       "origin_line": (6.0, 5.9, 6.1), "plane_conditional": (7.0, 6.9, 7.1),
                                       "uniform": (8.0, 7.9, 8.1)})
    v = judge(doc)
    assert v.ranking_keys == ["radius_error", "feature_gap"]
    assert v.overall["gaussian"] == (1, 2) and v.overall["correlated"] == (1, 2)
    assert v.overall["origin_line"] == (3, 3)  # clearly behind both on both, clearly ahead of the last two
    assert v.best == {"gaussian", "correlated"}
    # with equal feature gaps gaussian wins on radius error and loses nowhere: it is ahead
    set_value(doc, "correlated", "feature_gap", 5.0, 4.9, 5.1)
    v = judge(doc)
    assert v.overall["gaussian"] == (1, 1) and v.overall["correlated"] == (2, 2) and v.best == {"gaussian"}


def test_diagnostics_are_shown_with_their_meaning_and_never_highlighted(toy_run):
    doc = spread_values(toy_run(), "near_share", {"gaussian": (0.99, 0.98, 1.0), "correlated": 0.1, "origin_line": 0.1,
                                                   "plane_conditional": 0.1, "uniform": 0.0})
    m = judge(doc).metrics["near_share"]
    assert m.status == "diagnostic" and not m.ranks and not m.best
    assert "rewards collapse" in m.reason
    table = build_table(doc)
    assert not any(r.cells["near_share"].best for r in table.rows if not r.failed)


def test_columns_without_information_are_set_aside(toy_run):
    doc = toy_run()
    v = judge(doc)
    assert v.metrics["toy_zero_a"].status == "flat" and v.metrics["toy_zero_a"].flat_value == 0.0
    assert v.metrics["dimension"].status == "flat"  # 16 for every sampler
    assert "toy_zero_a" not in v.ranking_keys  # a flat headline metric never ranks
    # a value that differs on one row only makes the column informative again
    set_value(doc, "uniform", "toy_zero_a", 0.5)
    assert judge(doc).metrics["toy_zero_a"].status == "ranks"
    # image precision at 0 for every sampler tells them apart on nothing, whatever the real images score
    for name in FIVE:
        set_value(doc, name, "near_share", 0.0)
    set_value(doc, "real_heldout", "near_share", 0.9)
    assert judge(doc).metrics["near_share"].status == "flat"


def test_references_and_failed_rows_are_never_ranked(toy_run):
    doc = spread_values(toy_run(), "radius_error", FIVE)
    set_value(doc, "real_heldout", "radius_error", 0.0, 0.0, 0.001)  # better than any sampler
    failed = row_of(doc, "uniform")
    failed.update(status="failed", error="RuntimeError: boom")
    v = judge(doc)
    ranks = v.metrics["radius_error"].ranks
    assert "real_heldout" not in ranks and "reconstruction" not in ranks and "uniform" not in ranks
    assert ranks["gaussian"] == (1, 2) and "uniform" not in v.order
    table = build_table(doc)
    assert [r.name for r in table.failed] == ["uniform"] and table.rows[-1].name == "uniform"
    assert all(r.rank is None for r in table.rows if r.is_reference)


@pytest.mark.parametrize("role, status", [("headline", "ranks"), ("diagnostic", "diagnostic"), ("info", "info")])
def test_the_declared_role_decides(toy_run, role, status):
    doc = spread_values(toy_run(), "radius_error", FIVE)
    doc["metric_info"]["radius_error"]["role"] = role
    assert judge(doc).metrics["radius_error"].status == status
