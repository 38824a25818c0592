"""Do the judges agree? With several feature extractors in one run (`--features inception,domain`), every
image headline metric is scored once per extractor (`fid_recon`, `fid_recon@domain`; aebench.run.judges).
For each such metric and each pair of judges this says:

- how alike their sampler rankings are: the Spearman rank correlation (`scipy.stats.spearmanr`) of the two
  judges' values over the samplers that have both (None with fewer than 3 samplers, or when one judge
  gives every sampler the same value);
- which samplers they disagree on: pairs that one judge puts clearly ahead (intervals apart, as the
  verdict decides a gap) and the other clearly behind, also with intervals apart;
- one sentence that says so, for the reports: where the judges disagree, the report names the pair and
  does not pick one order (the verdict already counts both keys, so neither sampler is ahead of the other
  overall on their account).

Reads results documents only (like the rest of aebench.verdict); `aebench run` stores the records in the
results' `judges.agreement` when the run completes, and the reports render them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Mapping

from aebench.metric import judge_key, split_judge_key
from aebench.results.schema import Disagreement, MetricAgreement
from aebench.verdict.ranking import Estimate, badness, clearly_better, directed, ok_rows

IMAGE_GROUPS = ("image", "image_recon")


@dataclass
class Agreement:
    """One image headline metric under two judges."""

    metric: str  # base key (fid_recon)
    label: str
    judges: tuple[str, str]
    keys: tuple[str, str]
    n: int
    spearman: float | None
    disagreements: list[Disagreement] = field(default_factory=list)
    with_intervals: bool = True  # every compared value had an interval (else gaps are between point values)

    @property
    def sentence(self) -> str:
        first, second = self.judges
        rho = f"ρ = {self.spearman:.2f}" if self.spearman is not None else "no rank correlation"
        if self.disagreements:
            d = self.disagreements[0]
            more = len(self.disagreements) - 1
            also = f" and {more} more pair{'s' if more != 1 else ''}" if more else ""
            gap = "intervals apart both times"
            return (f"{self.label}: the judges disagree — {first} puts {d['ahead_first']} ahead of {d['ahead_second']}, "
                    f"{second} puts {d['ahead_second']} ahead of {d['ahead_first']} ({gap}{also}; "
                    f"{rho} over {self.n} samplers), so neither order is taken as the answer.")
        if self.n < 3:
            return f"{self.label}: {self.n} sampler(s) are too few to compare the rankings of {first} and {second}."
        if not self.with_intervals:
            return (f"{self.label}: {first} and {second} rank the {self.n} samplers with {rho}; some values have no "
                    f"interval (one seed), and point values cannot show a disagreement: run more seeds to check.")
        return (f"{self.label}: {first} and {second} rank the {self.n} samplers with {rho} and never put two of them "
                f"in opposite orders with intervals apart.")

    def record(self) -> MetricAgreement:
        return {"metric": self.metric, "label": self.label, "judges": list(self.judges), "keys": list(self.keys),
                "n": self.n, "spearman": self.spearman, "disagreements": list(self.disagreements),
                "with_intervals": self.with_intervals, "sentence": self.sentence}


def judge_names(results: Mapping[str, Any]) -> list[str]:
    """The run's extractors, first first ([] for a run with one or none)."""
    records = (results.get("judges") or {}).get("extractors") or []
    return [str(r.get("extractor")) for r in records]


def agreement(results: Mapping[str, Any]) -> list[Agreement]:
    """Every (image headline metric, pair of judges) of a run with several extractors, in metric_info order."""
    names = judge_names(results)
    if len(names) < 2:
        return []
    info = results.get("metric_info") or {}
    samplers = ok_rows(results, "samplers")
    out = []
    for key, entry in info.items():
        base, judge = split_judge_key(key)
        if judge or entry.get("role") != "headline" or entry.get("group") not in IMAGE_GROUPS:
            continue
        keys = {name: judge_key(base, None if i == 0 else name) for i, name in enumerate(names)}
        for first, second in combinations([n for n in names if keys[n] in info], 2):
            out.append(_compare(base, entry, (first, second), (keys[first], keys[second]), info, samplers))
    return out


def _compare(base: str, entry: Mapping[str, Any], judges: tuple[str, str], keys: tuple[str, str],
             info: Mapping[str, Any], samplers: list[Mapping[str, Any]]) -> Agreement:
    from scipy.stats import spearmanr

    estimates: dict[str, tuple[Estimate, Estimate]] = {}
    for row in samplers:
        pair = [Estimate.of((row.get("metrics") or {}).get(k)) for k in keys]
        if pair[0] is not None and pair[1] is not None:
            estimates[row["name"]] = (pair[0], pair[1])
    names = list(estimates)
    rho: float | None = None
    if len(names) >= 3:
        a = [badness(estimates[n][0].value, info[keys[0]]) for n in names]
        b = [badness(estimates[n][1].value, info[keys[1]]) for n in names]
        value = float(spearmanr(a, b).statistic) if len(set(a)) > 1 and len(set(b)) > 1 else math.nan
        rho = value if math.isfinite(value) else None
    disagreements: list[Disagreement] = []
    for x, y in combinations(names, 2):
        ahead = [_ahead(estimates[x][i], estimates[y][i], info[keys[i]]) for i in (0, 1)]
        if ahead[0] and ahead[1] and ahead[0] != ahead[1]:
            first_pick = x if ahead[0] == "x" else y
            second_pick = y if first_pick == x else x
            disagreements.append({"first": judges[0], "second": judges[1], "ahead_first": first_pick,
                                  "ahead_second": second_pick})
    label = str(entry.get("label", base))
    intervals = all(e.has_interval for pair in estimates.values() for e in pair)
    return Agreement(base, label, judges, keys, len(names), rho, disagreements, intervals)


def _ahead(x: Estimate, y: Estimate, info: Mapping[str, Any]) -> str | None:
    """'x' or 'y' when that one is clearly better (intervals apart) on this key, else None: point values
    (one seed, no bootstrap) cannot tell a gap from noise, so they never make a disagreement."""
    if not (x.has_interval and y.has_interval):
        return None
    dx, higher = directed(x, info)
    dy, _ = directed(y, info)
    if clearly_better(dx, dy, higher):
        return "x"
    if clearly_better(dy, dx, higher):
        return "y"
    return None


def agreement_records(results: Mapping[str, Any]) -> list[MetricAgreement]:
    """The results' `judges.agreement`: every Agreement as a JSON-ready record."""
    return [a.record() for a in agreement(results)]


__all__ = ["Agreement", "agreement", "agreement_records", "judge_names"]
