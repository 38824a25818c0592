"""The verdict of a run: which metrics may rank samplers on it, and the ranking they give.

A benchmark's verdict is only as good as the metrics behind it, so the rules are strict:

- only *headline* metrics rank, and only those that held on this model's known-answer ladders (the
  `validation` section of the results); without one, headline metrics rank with the caveat that they
  were validated on the reference data sets, not on this model;
- *diagnostic* metrics (hit rates, latent recall: they reward collapse or spread) are shown with their
  meaning and never ranked or highlighted; *info* metrics have no better direction;
- a column with the same value for every sampler (image PRDC at 0 when the decoder blurs) carries no
  information on this run and is set aside;
- a gap counts only where intervals (seed spread or the metric's own bootstrap interval) do not
  overlap: overlapping rows share a rank range such as "1–2" instead of a false winner;
- over all ranking metrics together, a sampler is ahead of another when it is better on at least one and
  worse on none, where a difference inside the metric's equivalence margin (with 95% confidence) counts
  as no difference; the `decision` (aebench.verdict.decision) says which end that reached: a unique
  first place, a group of equivalent samplers, a front of trade-offs, or still open;
- a metric whose best value is a point (its declared `ideal`, 0.5 for a two-sample accuracy) ranks by
  the distance to that point (`directed`), everywhere: here, in `compare` and on the leaderboard;
- reference rows are shown, never ranked; failed rows are listed, never ranked.

Terminal, markdown and HTML reports all render this one object, so they always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from aebench.infra.numbers import is_finite_number
from aebench.results.schema import MetricInfo, ResultsDocument
from aebench.verdict.decision import Decision, PairDecision, RankingMetric, ahead, compare_rows, decide
from aebench.verdict.equivalence import Margin

Status = Literal["ranks", "untrusted", "diagnostic", "info", "flat"]

NOT_ON_THIS_MODEL = "validated on the reference data sets, not on this model — run with --validate"
_EQUAL = 1e-12  # relative: values closer than this are the same value


@dataclass(frozen=True)
class Estimate:
    """A row's value of one metric with its 95% interval (low == high == value when none is known)."""

    value: float
    low: float
    high: float
    has_interval: bool

    @classmethod
    def of(cls, entry: Mapping[str, Any] | None) -> "Estimate | None":
        """From a results entry; None when the value is missing or not finite."""
        if not entry or not is_finite_number(entry.get("value")):
            return None
        value = float(entry["value"])
        low, high = entry.get("low"), entry.get("high")
        if is_finite_number(low) and is_finite_number(high):
            return cls(value, min(float(low), value), max(float(high), value), True)
        return cls(value, value, value, False)

    def distance_to(self, ideal: float) -> "Estimate":
        """|value - ideal| with its interval: from 0 when the interval holds the ideal point, else from its
        nearer end, to its farther end."""
        low, high = self.low - ideal, self.high - ideal
        near = 0.0 if low <= 0.0 <= high else min(abs(low), abs(high))
        return Estimate(abs(self.value - ideal), near, max(abs(low), abs(high)), self.has_interval)


def directed(estimate: Estimate, info: Mapping[str, Any]) -> tuple[Estimate, bool]:
    """The estimate to rank by and whether higher is better for it: the distance to the metric's
    declared `ideal` (lower is better) where it has one, else the estimate and its direction. Only for
    metrics with a direction (`higher_is_better` not None)."""
    ideal = info.get("ideal")
    if is_finite_number(ideal):
        return estimate.distance_to(float(ideal)), False
    return estimate, bool(info.get("higher_is_better"))


def badness(value: float, info: Mapping[str, Any]) -> float:
    """How far a point value is from the best (lower is better): the distance to `ideal`, or the value
    signed by its direction."""
    estimate, higher = directed(Estimate(value, value, value, False), info)
    return -estimate.value if higher else estimate.value



def clearly_better(a: Estimate, b: Estimate, higher_is_better: bool) -> bool:
    """Whether `a`'s interval lies wholly on the good side of `b`'s (no overlap, not even touching)."""
    return a.low > b.high if higher_is_better else a.high < b.low


def rank_ranges(estimates: Mapping[str, Estimate], higher_is_better: bool) -> dict[str, tuple[int, int]]:
    """Each row's rank range [1 + rows clearly better, count - rows clearly worse]: rows whose
    intervals overlap share ranks, so a gap inside the noise never makes a winner."""
    n = len(estimates)
    out = {}
    for name, mine in estimates.items():
        better = sum(clearly_better(other, mine, higher_is_better) for o, other in estimates.items() if o != name)
        worse = sum(clearly_better(mine, other, higher_is_better) for o, other in estimates.items() if o != name)
        out[name] = (1 + better, n - worse)
    return out


def format_rank(rank: tuple[int, int]) -> str:
    """'2' or '1–3'."""
    return str(rank[0]) if rank[0] == rank[1] else f"{rank[0]}–{rank[1]}"


@dataclass
class MetricJudgement:
    """What the verdict makes of one metric column on this run."""

    key: str
    info: MetricInfo
    status: Status
    reason: str  # one line: why it ranks, or why not
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)  # sampler -> rank range ('ranks' only)
    best: frozenset[str] = frozenset()  # samplers at the top, when some sampler is clearly behind them
    with_intervals: bool = False  # every ranked value had an interval
    flat_value: float | None = None  # the one value every row has ('flat' only)


@dataclass
class Verdict:
    """Metric judgements and the overall order of the sampler rows that finished."""

    metrics: dict[str, MetricJudgement]
    overall: dict[str, tuple[int, int]]  # sampler -> rank range over all ranking metrics
    order: list[str]  # ranked samplers, best first
    validated: bool  # the results carry this model's validation
    basis: str  # one sentence: what the ranking rests on
    best: frozenset[str] = frozenset()
    uncovered: list[str] = field(default_factory=list)  # ladders no trusted headline metric detects
    notes: list[str] = field(default_factory=list)
    decision: Decision | None = None  # who can still be first, and which end the comparison reached
    aliases: dict[str, list[str]] = field(default_factory=dict)  # a sampler -> later samplers with identical rows

    @property
    def ranking_keys(self) -> list[str]:
        return [k for k, m in self.metrics.items() if m.status == "ranks"]


def ok_rows(results: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    return [r for r in results.get(section, []) if r.get("status", "ok") == "ok"]


def judge(results: ResultsDocument | Mapping[str, Any], keys: Sequence[str] | None = None) -> Verdict:
    """The verdict over `keys` (default: every metric in metric_info)."""
    info: Mapping[str, MetricInfo] = results.get("metric_info", {})
    keys = list(info) if keys is None else [k for k in keys if k in info]
    validation = results.get("validation")
    samplers = ok_rows(results, "samplers")
    every_row = [*ok_rows(results, "references"), *samplers]
    judgements: dict[str, MetricJudgement] = {}
    for key in keys:
        judgements[key] = _judge_metric(results, key, info[key], validation, samplers, every_row)

    ranking = [m for m in judgements.values() if m.status == "ranks"]
    overrides = (results.get("config") or {}).get("margins") or {}
    metrics = [ranking_metric(m, overrides.get(m.key)) for m in ranking]
    # rows with a finite value on at least one ranking metric take part in the ranking; a row identical to an
    # earlier one (the same draws under another name: `line` with its default endpoints is `origin_line`)
    # takes part once, under the first name
    aliases = identical_rows(samplers)
    copies = {other for others in aliases.values() for other in others}
    rows = {r["name"]: r.get("metrics", {}) for r in samplers if r["name"] not in copies
            and any(Estimate.of(r.get("metrics", {}).get(m.key)) is not None for m in ranking)}
    pairs = compare_rows(rows, metrics)
    overall = _overall(list(rows), pairs) if ranking else {}
    positions = _point_positions(samplers, ranking)
    order = sorted(overall, key=lambda name: (overall[name], _mean_rank(name, ranking), positions.get(name, math.inf),
                                              name))
    best = _top(overall)
    names = ", ".join(m.info["label"] for m in ranking)
    if not ranking:
        basis = "No metric ranks these samplers: no headline metric is both trusted and informative on this run."
    elif validation is not None:
        basis = f"Ranked by {names}: they held on this model's known-answer ladders."
        trusted = {ladder for m in ranking for ladder in _trusted_for(m.key, validation)}
        blind = [ladder for ladder in validation.get("uncovered") or [] if ladder not in trusted]
        if blind:
            ladders = list(validation.get("ladders") or [])
            seen = [ladder for ladder in ladders if ladder in trusted] + sorted(trusted - set(ladders))
            basis += (f" That ranking sees only {', '.join(seen) or 'the ladders they were checked on'}: it says "
                      f"nothing about {', '.join(blind)}, which no metric trusted here detects.")
    else:
        basis = f"Ranked by {names}: {NOT_ON_THIS_MODEL}."
    notes = []
    no_interval = [m.info["label"] for m in ranking if not m.with_intervals]
    if no_interval and len(samplers) > 1:
        notes.append(
            f"No interval for {', '.join(no_interval)} (one seed, no bootstrap): the order there is by point value "
            "and may be noise; run with --seeds 3 to see which gaps are real."
        )
    if ranking and len(samplers) > 1 and not best:
        notes.append("Every sampler's intervals overlap with another's on every ranking metric: no sampler is "
                     "clearly ahead of the others.")
    if validation is not None and metrics:
        unguarded = unguarded_ladders(validation, metrics)
        if unguarded:
            notes.append(f"On this model no ranking metric moves at step 2 of {', '.join(unguarded)} by twice its "
                         f"equivalence margin: an 'equivalent' there may hide that failure (narrow a margin with "
                         f"--margin).")
    uncovered = list((validation or {}).get("uncovered", []))
    seeds = {r["name"]: max(1, len(r.get("seeds") or [])) for r in samplers}
    decision = decide(rows, metrics, order, seeds) if ranking else None
    for name, others in aliases.items():  # an identical row ranks where its first name does
        for other in others:
            if name in overall:
                overall[other] = overall[name]
    order = sorted(overall, key=lambda name: (overall[name], _mean_rank(name, ranking), positions.get(name, math.inf),
                                              name))
    return Verdict(judgements, overall, order, validation is not None, basis, best, uncovered, notes, decision,
                   aliases)


GUARD_STEP = 2  # a margin must not hide a sample degraded by this step of a ladder the metric detects


def unguarded_ladders(validation: Mapping[str, Any], metrics: Sequence[RankingMetric]) -> list[str]:
    """The known-answer ladders of this model's validation whose step `GUARD_STEP` no ranking metric sets apart
    from step 0 by at least twice its equivalence margin. Two samples count as equivalent only when every
    ranking metric says so, so one metric per ladder that sees the step beyond its margin keeps a degraded
    sample from being called equivalent to real data."""
    ladders: set[str] = set()
    guarded: set[str] = set()
    for m in metrics:
        entry = (validation.get("metrics") or {}).get(m.key) or {}
        for ladder, result in (entry.get("ladders") or {}).items():
            values = result.get("values") or []
            ladders.add(ladder)
            if m.margin is None or len(values) <= GUARD_STEP or not all(is_finite_number(v) for v in values):
                continue
            info = {"higher_is_better": m.higher_is_better, "ideal": m.ideal}
            change = badness(float(values[GUARD_STEP]), info) - badness(float(values[0]), info)
            if change >= 2 * m.margin.bound(float(values[0]), float(values[GUARD_STEP])):
                guarded.add(ladder)
    return sorted(ladders - guarded)


def identical_rows(samplers: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Sampler rows with exactly the same numbers over the same seeds: the same draws under two names.
    First name (in run order) -> the later names."""
    import json

    first: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for row in samplers:
        if not row.get("metrics"):
            continue
        key = json.dumps([row.get("seeds"), row.get("metrics")], sort_keys=True, default=str)
        if key in first:
            out.setdefault(first[key], []).append(row["name"])
        else:
            first[key] = row["name"]
    return out


def ranking_metric(judgement: MetricJudgement, override: str | None = None) -> RankingMetric:
    """The decision's view of a ranking metric: direction and equivalence margin (the run's `--margin`
    override, else the margin its Column declares, recorded in metric_info; none: never equivalent)."""
    info = judgement.info
    text = override or info.get("margin")
    ideal = info.get("ideal")
    return RankingMetric(judgement.key, info.get("label", judgement.key), bool(info.get("higher_is_better")),
                         Margin.parse(text) if text else None, float(ideal) if is_finite_number(ideal) else None)


def _judge_metric(results: Mapping[str, Any], key: str, info: MetricInfo, validation: Mapping[str, Any] | None,
                  samplers: list[Mapping[str, Any]], every_row: list[Mapping[str, Any]]) -> MetricJudgement:
    def finite_values(rows: list[Mapping[str, Any]]) -> list[float]:
        return [float(r["metrics"][key]["value"]) for r in rows if is_finite_number(r.get("metrics", {}).get(key, {}).get("value"))]

    # informative = it tells the samplers apart; with fewer than two samplers, judge it over every row
    values = finite_values(samplers)
    if len(values) < 2:
        values = finite_values(every_row)
    if not values:
        return MetricJudgement(key, info, "flat", "no row has a finite value")
    lo, hi = min(values), max(values)
    if len(values) > 1 and hi - lo <= _EQUAL * max(1.0, abs(hi), abs(lo)):
        return MetricJudgement(key, info, "flat", "the same value for every sampler: it tells them apart on "
                               "nothing here", flat_value=values[0])
    hib = info.get("higher_is_better")
    role = info.get("role", "info")
    if role == "info" or hib is None:
        reason = info.get("description") or "information, no better direction"
        if not info.get("declared", True):
            reason = f"undeclared by its metric: shown as information, never ranked ({reason})"
        return MetricJudgement(key, info, "info", reason)
    if role == "diagnostic":
        return MetricJudgement(key, info, "diagnostic",
                               info.get("description") or "a diagnostic: read it with the others, it never ranks alone")
    untrusted = _untrusted_because(results, key, info, validation)
    if untrusted:
        return MetricJudgement(key, info, "untrusted", untrusted)
    estimates: dict[str, Estimate] = {}
    higher = bool(hib)
    for r in samplers:
        if (e := Estimate.of(r.get("metrics", {}).get(key))) is not None:
            estimates[r["name"]], higher = directed(e, info)
    ranks = rank_ranges(estimates, higher)
    reason = _trusted_because(key, validation)
    return MetricJudgement(key, info, "ranks", reason, ranks, _top(ranks),
                           with_intervals=all(e.has_interval for e in estimates.values()))


def _untrusted_because(results: Mapping[str, Any], key: str, info: MetricInfo,
                       validation: Mapping[str, Any] | None) -> str:
    """Why a headline metric may not rank on this run, or '' when it may."""
    features = extractor_of(results, info)
    if info.get("group") in ("image", "image_recon") and features and not features.get("judge", True):
        return f"the extractor {features.get('extractor', '?')!r} is not a validated judge of images"
    if validation is None:
        return ""
    entry = (validation.get("metrics") or {}).get(key)
    if entry is None:
        return "not checked by this run's validation"
    verdict = entry.get("verdict")
    if verdict == "holds":
        return ""
    failed = []
    claimed = set(entry.get("detects") or info.get("detects") or entry.get("ladders") or ())  # they decide the verdict
    for ladder, result in (entry.get("ladders") or {}).items():
        if ladder in claimed and result.get("verdict") in ("broken", "flat", "untested"):
            rho = result.get("spearman")
            failed.append(f"{result['verdict']} on {ladder}" + (f" (ρ {rho:.2f})" if is_finite_number(rho) else ""))
    if verdict == "untested":
        return "untested: no ladder it claims to detect was run"
    return f"{verdict} on this model's validation" + (f": {', '.join(failed)}" if failed else "")


def extractor_of(results: Mapping[str, Any], info: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record of the extractor that made a key: the features section for the run's first, the `judges`
    section's entry for another judge's key (`fid_recon@domain`)."""
    name = info.get("judge")
    if not name:
        return results.get("features") or {}
    for record in (results.get("judges") or {}).get("extractors", []):
        if record.get("extractor") == name:
            return record
    return {}


def _trusted_for(key: str, validation: Mapping[str, Any]) -> list[str]:
    """The ladders this model's validation trusts `key` for."""
    return list((validation.get("metrics") or {}).get(key, {}).get("trusted_for") or [])


def _trusted_because(key: str, validation: Mapping[str, Any] | None) -> str:
    if validation is None:
        return NOT_ON_THIS_MODEL
    ladders = (validation.get("metrics") or {}).get(key, {}).get("trusted_for") or []
    return "held on this model" + (f" for {', '.join(ladders)}" if ladders else "")


def _top(ranks: Mapping[str, tuple[int, int]]) -> frozenset[str]:
    """Rows that may be first, when at least one row is clearly behind them (else nobody is 'best')."""
    if len(ranks) < 2 or all(lo == 1 for lo, _ in ranks.values()):
        return frozenset()
    return frozenset(name for name, (lo, _) in ranks.items() if lo == 1)


def _overall(names: list[str], pairs: Mapping[tuple[str, str], PairDecision]) -> dict[str, tuple[int, int]]:
    """Rank ranges over every ranking metric together: a sampler is ahead of another only when it is
    clearly better on at least one of them and clearly worse on none, differences inside a metric's
    equivalence margin counting as none (no weights to argue about)."""
    n = len(names)
    return {a: (1 + sum(ahead(pairs, b, a) for b in names if b != a), n - sum(ahead(pairs, a, b) for b in names if b != a))
            for a in names}


def _point_positions(samplers: list[Mapping[str, Any]], ranking: list[MetricJudgement]) -> dict[str, float]:
    """Mean position by point value over the ranking metrics: the display order inside a tie."""
    positions: dict[str, list[int]] = {}
    for m in ranking:
        values = [(float(r["metrics"][m.key]["value"]), r["name"]) for r in samplers if r["name"] in m.ranks]
        if is_finite_number(m.info.get("ideal")):
            values = [(badness(v, m.info), name) for v, name in values]
            values.sort()
        else:
            values.sort(reverse=bool(m.info["higher_is_better"]))
        for i, (_, name) in enumerate(values):
            positions.setdefault(name, []).append(i)
    return {name: sum(p) / len(p) for name, p in positions.items()}


def _mean_rank(name: str, ranking: list[MetricJudgement]) -> float:
    mids = [sum(m.ranks[name]) / 2 for m in ranking if name in m.ranks]
    return sum(mids) / len(mids) if mids else math.inf


def metric_order(results: ResultsDocument | Mapping[str, Any], judgement: MetricJudgement) -> list[str]:
    """The ranked samplers of one metric, best first: by the best rank each may take (rows that could be
    first come first), then by point value (`badness`). Empty unless the metric ranks."""
    values = {r["name"]: float(r["metrics"][judgement.key]["value"]) for r in ok_rows(results, "samplers")
              if r["name"] in judgement.ranks}
    return sorted(values, key=lambda name: (judgement.ranks[name][0], badness(values[name], judgement.info), name))


__all__ = ["Estimate", "MetricJudgement", "Verdict", "badness", "clearly_better", "directed", "format_rank", "judge",
           "metric_order", "rank_ranges", "NOT_ON_THIS_MODEL"]
