"""The decision between samplers: for every pair, on every ranking metric, is one clearly better, are they
practically equivalent, or is it still open? And from the pairs: who can still be first, and which end
the comparison reached.

Per metric, from a's side (`metric_status`):
- "equivalent": the difference lies inside the metric's margin with 95% confidence (two one-sided tests,
  `aebench.verdict.equivalence`). A difference inside the margin is not a quality difference, even when
  the intervals no longer overlap;
- "better" / "worse": the 95% intervals do not overlap, and the difference is not inside the margin;
- "open": neither yet, or either side has no interval (a metric without a bootstrap at one seed): a
  point value cannot tell a real gap from noise, so it never decides.

A metric with a relative margin (latent FD 5%, FID 4%: "within 5% of each other") is a positive distance
whose differences are ratios, so it is compared on the log scale (`ratio_entry`): the interval of the mean
log value over seeds. On the raw scale one sampler's runaway draws (a flow's tail, a few points at 1e25
per seed) make latent FD swing between seeds by tens of orders of magnitude, the Student-t interval of
the raw mean spans all of them, and a sampler a million times worse than every other on every seed is
never "clearly worse". The equivalence test is unchanged where values are close: |a - b| < m min(a, b)
is exactly |log a - log b| < log(1 + m).

Per pair (`PairDecision.kind`):
- dominance ("a_ahead"/"b_ahead"): one is better on some ranking metric and worse on none;
- "trade_off": each is better on a different metric;
- "equivalent": equivalent on every ranking metric;
- "open": none of these yet (more data can still decide it).

The contenders are the samplers that no other sampler is ahead of: the ones that can still be first. The
comparison has reached its end when no pair of contenders is open: a unique first place, a group of
equivalent samplers, or a front of trade-offs (`Decision.end`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from aebench.verdict.equivalence import Margin, Spread, difference, equivalent, seeds_to_settle

PairStatus = Literal["better", "worse", "equivalent", "open"]
PairKind = Literal["a_ahead", "b_ahead", "trade_off", "equivalent", "open"]
End = Literal["first", "equivalent", "trade_off", "open", "none"]

_FLIP: dict[PairStatus, PairStatus] = {"better": "worse", "worse": "better", "equivalent": "equivalent", "open": "open"}


@dataclass(frozen=True)
class RankingMetric:
    """A metric that ranks on this run: its key, label, direction and equivalence margin (None: none
    declared, so two rows are never called equivalent on it)."""

    key: str
    label: str
    higher_is_better: bool
    margin: Margin | None = None
    ideal: float | None = None  # the best value is this point (a two-sample accuracy's 0.5): rank by distance


def _directed(interval: tuple[float, float, float], metric: RankingMetric) -> tuple[tuple[float, float, float], bool]:
    """(value, low, high) to rank by and whether higher is better: the distance to the metric's ideal point
    where it has one (from 0 when the interval holds it), else the interval and its direction."""
    if metric.ideal is None:
        return interval, metric.higher_is_better
    value, low, high = (x - metric.ideal for x in interval)
    near = 0.0 if low <= 0.0 <= high else min(abs(low), abs(high))
    return (abs(value), near, max(abs(low), abs(high))), False


def _interval(entry: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    from aebench.infra.numbers import is_finite_number

    if not entry or not is_finite_number(entry.get("value")):
        return None
    value = float(entry["value"])
    low, high = entry.get("low"), entry.get("high")
    if is_finite_number(low) and is_finite_number(high):
        return value, min(float(low), value), max(float(high), value)
    return None  # a point value (one seed, no bootstrap) says nothing about noise: it decides nothing


def compares_ratios(metric: RankingMetric) -> bool:
    """Whether the metric's differences are ratios: a relative margin on a metric without an ideal point."""
    return metric.margin is not None and metric.margin.relative and metric.ideal is None


def ratio_entry(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A results entry on the log scale: the mean of the per-seed logs with its Student-t 95% interval
    (as the raw rows get theirs), or with one seed the log of the bootstrap's percentile interval (a
    percentile interval maps through log exactly). None when a number is not positive and finite."""
    from aebench.infra.numbers import is_finite_number

    if not entry:
        return None
    seeds = entry.get("per_seed")
    if isinstance(seeds, list) and len(seeds) > 1:
        if not all(is_finite_number(v) and float(v) > 0 for v in seeds):
            return None
        import statistics

        from aebench.results.document import seed_half_width

        logs = [math.log(float(v)) for v in seeds]
        mean = statistics.fmean(logs)
        half = seed_half_width(statistics.stdev(logs), len(logs), [])
        return {"value": mean, "low": mean - half, "high": mean + half, "per_seed": logs}
    numbers = [entry.get(k) for k in ("value", "low", "high")]
    if not all(is_finite_number(v) and float(v) > 0 for v in numbers):
        return None
    return dict(zip(("value", "low", "high"), (math.log(float(v)) for v in numbers)))


def _on_scale(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, metric: RankingMetric
              ) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Margin | None, bool]:
    """Both entries and the margin on the scale the metric is compared on, and whether that is the log
    scale (see the module docstring)."""
    if metric.margin is not None and compares_ratios(metric):
        la, lb = ratio_entry(a), ratio_entry(b)
        if la is not None and lb is not None:
            return la, lb, Margin(math.log1p(metric.margin.size), relative=False), True
    return a, b, metric.margin, False


def metric_status(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, metric: RankingMetric) -> PairStatus:
    """How row a's entry compares with row b's on one metric (see the module docstring)."""
    a, b, margin, _ = _on_scale(a, b, metric)
    ia, ib = _interval(a), _interval(b)
    if ia is None or ib is None:
        return "open"
    if margin is not None:
        sa, sb = Spread.of(a), Spread.of(b)
        if sa is not None and sb is not None and equivalent(sa, sb, margin.bound(ia[0], ib[0])):
            return "equivalent"
    (_, a_low, a_high), higher = _directed(ia, metric)
    (_, b_low, b_high), _ = _directed(ib, metric)
    if higher:
        better, worse = a_low > b_high, b_low > a_high
    else:
        better, worse = a_high < b_low, b_high < a_low
    return "better" if better else "worse" if worse else "open"


@dataclass(frozen=True)
class PairDecision:
    """Two samplers compared on every ranking metric; `statuses` are from a's side."""

    a: str
    b: str
    statuses: dict[str, PairStatus]

    @property
    def a_wins(self) -> list[str]:
        return [k for k, s in self.statuses.items() if s == "better"]

    @property
    def b_wins(self) -> list[str]:
        return [k for k, s in self.statuses.items() if s == "worse"]

    @property
    def open_keys(self) -> list[str]:
        return [k for k, s in self.statuses.items() if s == "open"]

    @property
    def kind(self) -> PairKind:
        if self.a_wins and self.b_wins:
            return "trade_off"
        if self.a_wins:
            return "a_ahead"
        if self.b_wins:
            return "b_ahead"
        if self.statuses and all(s == "equivalent" for s in self.statuses.values()):
            return "equivalent"
        return "open"

    @property
    def decided(self) -> bool:
        return self.kind != "open"

    def flipped(self) -> "PairDecision":
        return PairDecision(self.b, self.a, {k: _FLIP[s] for k, s in self.statuses.items()})


@dataclass(frozen=True)
class OpenGap:
    """What still separates an open pair on one metric: the difference, its standard error, and about
    how many seeds per sampler would settle it (None: the difference sits on the margin)."""

    key: str
    difference: float  # of the logs where the metric compares ratios (`ratio`)
    se: float
    seeds_needed: int | None
    ratio: bool = False

    def text(self) -> str:
        """'+1.2 ± 0.9', or for a ratio '×1.04 (95%: ×0.98 to ×1.10)'."""
        if self.ratio:
            low, high = self.difference - 1.96 * self.se, self.difference + 1.96 * self.se
            return f"×{_exp(self.difference):.3g} (95%: ×{_exp(low):.3g} to ×{_exp(high):.3g})"
        return f"{self.difference:+.3g} ± {1.96 * self.se:.2g}"


def _exp(x: float) -> float:
    return math.exp(min(x, 700.0))


@dataclass
class Decision:
    """Which end the comparison reached, and who is where."""

    end: End
    contenders: list[str]  # can still be first, best first (the verdict's order)
    pairs: list[PairDecision]  # every pair of contenders
    metrics: list[RankingMetric]
    gaps: dict[tuple[str, str], list[OpenGap]] = field(default_factory=dict)  # open pairs of contenders
    behind: dict[str, str] = field(default_factory=dict)  # a sampler out of the running -> one sampler ahead of it

    @property
    def first(self) -> str | None:
        return self.contenders[0] if self.end == "first" else None

    @property
    def open_pairs(self) -> list[PairDecision]:
        return [p for p in self.pairs if not p.decided]

    @property
    def decided(self) -> bool:
        return self.end in ("first", "equivalent", "trade_off")

    def seeds_needed(self) -> int | None:
        """About how many seeds per contender would settle every open pair (None when some cannot be)."""
        counts = [g.seeds_needed for gaps in self.gaps.values() for g in gaps]
        if not counts or any(c is None for c in counts):
            return None
        # a pair is settled once ONE of its open metrics decides it one way, or all turn equivalent: the
        # largest need over the pair's metrics is what settles every one of them
        per_pair = [max(g.seeds_needed for g in gaps if g.seeds_needed is not None) for gaps in self.gaps.values()]
        return max(per_pair)


def compare_rows(rows: Mapping[str, Mapping[str, Any]], metrics: Sequence[RankingMetric]) -> dict[tuple[str, str], PairDecision]:
    """Every ordered pair (a, b), a != b, of the named rows (name -> its `metrics` mapping)."""
    names = list(rows)
    out: dict[tuple[str, str], PairDecision] = {}
    for a, b in itertools.combinations(names, 2):
        pair = PairDecision(a, b, {m.key: metric_status(rows[a].get(m.key), rows[b].get(m.key), m) for m in metrics})
        out[(a, b)] = pair
        out[(b, a)] = pair.flipped()
    return out


def ahead(pairs: Mapping[tuple[str, str], PairDecision], a: str, b: str) -> bool:
    """Whether a is better than b on some ranking metric and worse on none."""
    pair = pairs.get((a, b))
    return pair is not None and pair.kind == "a_ahead"


def decide(rows: Mapping[str, Mapping[str, Any]], metrics: Sequence[RankingMetric], order: Sequence[str],
           seeds: Mapping[str, int] | None = None) -> Decision:
    """The decision over `rows` (sampler name -> its `metrics` mapping) on the ranking `metrics`; `order`
    is the verdict's display order (best first), `seeds` each row's seed count (for the estimate of what
    would settle an open pair)."""
    metrics = list(metrics)
    if not metrics or not rows:
        return Decision("none", [], [], metrics)
    pairs = compare_rows(rows, metrics)
    names = [n for n in order if n in rows] + [n for n in rows if n not in order]
    behind: dict[str, str] = {}
    for b in names:
        leader = next((a for a in names if a != b and ahead(pairs, a, b)), None)
        if leader is not None:
            behind[b] = leader
    contenders = [n for n in names if n not in behind]
    among = [pairs[(a, b)] for a, b in itertools.combinations(contenders, 2)]
    if len(contenders) == 1:
        end: End = "first"
    elif any(not p.decided for p in among):
        end = "open"
    elif all(p.kind == "equivalent" for p in among):
        end = "equivalent"
    else:
        end = "trade_off"
    gaps = {}
    for p in among:
        if not p.decided:
            gaps[(p.a, p.b)] = _gaps(p, rows, metrics, seeds or {})
    return Decision(end, contenders, among, metrics, gaps, behind)


def _gaps(pair: PairDecision, rows: Mapping[str, Mapping[str, Any]], metrics: Sequence[RankingMetric],
          seeds: Mapping[str, int]) -> list[OpenGap]:
    out = []
    for m in metrics:
        if pair.statuses.get(m.key) != "open":
            continue
        a, b, margin, logs = _on_scale(rows[pair.a].get(m.key), rows[pair.b].get(m.key), m)
        sa, sb = Spread.of(a), Spread.of(b)
        if sa is None or sb is None:
            out.append(OpenGap(m.key, math.nan, math.nan, None))
            continue
        d, se, _ = difference(sa, sb)
        bound = margin.bound(sa.mean, sb.mean) if margin is not None else 0.0
        k = min(seeds.get(pair.a, 1), seeds.get(pair.b, 1))
        out.append(OpenGap(m.key, d, se, seeds_to_settle(sa, sb, bound, k), ratio=logs))
    return out


END_TEXT = {
    "first": "a unique first place",
    "equivalent": "a group of equivalent samplers",
    "trade_off": "a front of trade-offs",
    "open": "still open",
    "none": "nothing to decide",
}


def recommendation(decision: Decision | None, race: Mapping[str, Any] | None = None,
                   aliases: Mapping[str, Sequence[str]] | None = None) -> str:
    """One sentence that answers "which sampler should I use?" from the decision, never from a second
    rule. `aliases`: other labels of a sampler whose draws are identical."""
    if decision is None or decision.end == "none":
        return "No recommendation: no metric ranks these samplers on this run (see the verdict)."
    labels = {m.key: m.label for m in decision.metrics}

    def name(label: str) -> str:
        extra = list((aliases or {}).get(label, ()))
        return label + (f" (= {', '.join(extra)})" if extra else "")

    def names(items: Sequence[str]) -> str:
        return ", ".join(name(x) for x in items)

    margins = ", ".join(f"{m.label} {m.margin.text()}" for m in decision.metrics if m.margin is not None)
    if decision.end == "first":
        return (f"Use {name(decision.contenders[0])}: no other sampler is ahead of it, and each of the others is "
                f"behind some sampler (clearly worse on a ranking metric, better on none).")
    if decision.end == "equivalent":
        return (f"Use any of {names(decision.contenders)}: they are equivalent within the margins ({margins}) on "
                f"every ranking metric, and every other sampler is behind one of them.")
    if decision.end == "trade_off":
        wins: dict[str, set[str]] = {c: set() for c in decision.contenders}
        for pair in decision.pairs:
            wins[pair.a].update(labels[k] for k in pair.a_wins)
            wins[pair.b].update(labels[k] for k in pair.b_wins)
        parts = [f"{name(c)} is better on {', '.join(sorted(w))}" for c, w in wins.items() if w]
        same = [f"{name(p.a)} ≈ {name(p.b)}" for p in decision.pairs if p.kind == "equivalent"]
        tail = f" (equivalent within the margins: {'; '.join(same)})" if same else ""
        return f"No single best sampler; choose by what matters to you: {'; '.join(parts)}{tail}."
    pairs = open_pair_texts(decision)
    count = len(decision.gaps)
    text = (f"Not decided yet between {names(decision.contenders)}: {count} pair(s) still open"
            + (f" (for instance {pairs[0]})" if pairs else "") + ".")
    needed = decision.seeds_needed()
    no_margin = sorted({labels[g.key] for gaps in decision.gaps.values() for g in gaps
                        if next(m for m in decision.metrics if m.key == g.key).margin is None})
    if needed is not None:
        images = (race or {}).get("images_needed")
        cost = f", about {images:,} more decoded images," if isinstance(images, int) else ""
        text += (f" About {needed} seeds per sampler{cost} would likely settle them "
                 f"(aebench run --decide --resume --budget ...).")
    elif no_margin:
        text += (f" No equivalence margin for {', '.join(no_margin)}: samplers that are alike there never settle "
                 f"(give one with --margin).")
    else:
        text += " Some differences sit on their margin; more data is unlikely to settle them."
    return text


def open_pair_texts(decision: Decision, limit: int | None = None) -> list[str]:
    """'a vs b on latent FD: +1.2 ± 0.9' per open pair of contenders (the metric furthest from settling),
    the closest pairs first."""
    labels = {m.key: m.label for m in decision.metrics}
    out: list[tuple[float, str]] = []
    for (a, b), gaps in decision.gaps.items():
        finite = [g for g in gaps if math.isfinite(g.difference) and math.isfinite(g.se)]
        if not finite:
            out.append((math.inf, f"{a} vs {b}"))
            continue
        worst = max(finite, key=lambda g: abs(g.difference) / max(g.se, 1e-300))  # the most telling gap
        out.append((worst.seeds_needed or math.inf,
                    f"{a} vs {b} on {labels[worst.key]}: {worst.text()}"))
    out.sort(key=lambda x: x[0])
    return [text for _, text in out[:limit]]


__all__ = ["Decision", "END_TEXT", "OpenGap", "PairDecision", "PairStatus", "RankingMetric", "ahead", "compare_rows",
           "compares_ratios", "decide", "metric_status", "open_pair_texts", "ratio_entry", "recommendation"]
