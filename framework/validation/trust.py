"""The verdict of a ladder: does a metric get worse at every step of a known degradation?

A metric's value along a ladder is turned into "badness" (the value itself when lower is better, its
negative when higher is better) and rank-correlated (Spearman) with the step. The ladder *holds* at a
correlation of at least HOLDS_AT; it is *flat* when the values barely move (their range is below
FLAT_BELOW of their largest magnitude, or below FLAT_BELOW in absolute terms for shares in [0, 1]),
whatever the correlation of what is left; anything else is *broken*. A metric is trusted for the
ladders it claims to detect (`Column.detects`) and holds on; its overall verdict holds only when it
holds on every one of them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from aebench.infra.numbers import is_finite_number

HOLDS_AT = 0.9
FLAT_BELOW = 0.01
VERDICTS = ("holds", "broken", "flat", "untested")



def badness(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Values oriented so that larger means worse."""
    return [-float(v) for v in values] if higher_is_better else [float(v) for v in values]


def relative_range(values: Sequence[float], *, rate: bool = False) -> float:
    """How much the values move: their range, relative to their largest magnitude (absolute for rates)."""
    lo, hi = min(values), max(values)
    if rate:
        return hi - lo
    scale = max(abs(lo), abs(hi))
    return 0.0 if scale == 0 else (hi - lo) / scale


def ladder_verdict(values: Sequence[float | None], higher_is_better: bool | None, *, rate: bool = False,
                   holds_at: float = HOLDS_AT, flat_below: float = FLAT_BELOW,
                   error: str | None = None) -> dict[str, Any]:
    """{values, spearman, verdict[, note]} for one metric key along one ladder (values in step order)."""
    from scipy.stats import spearmanr

    out: dict[str, Any] = {"values": [float(v) if is_finite_number(v) else None for v in values], "spearman": None}
    if error is not None:
        return {**out, "verdict": "untested", "note": error}
    if higher_is_better is None:
        return {**out, "verdict": "untested", "note": "no better direction (informational)"}
    if len(values) < 3:
        return {**out, "verdict": "untested", "note": f"{len(values)} steps are too few for a rank correlation"}
    if not all(is_finite_number(v) for v in values):
        return {**out, "verdict": "broken", "note": "no finite value at some step"}
    bad = badness(values, higher_is_better)
    moved = relative_range(bad, rate=rate)
    rho = float(spearmanr(range(len(bad)), bad).statistic) if moved > 0 else float("nan")
    out["spearman"] = rho if math.isfinite(rho) else None
    if moved < flat_below:
        return {**out, "verdict": "flat", "note": f"moves by {moved:.2g}{'' if rate else ' of its size'}"}
    return {**out, "verdict": "holds" if math.isfinite(rho) and rho >= holds_at else "broken"}


def metric_verdict(ladders: Mapping[str, Mapping[str, Any]], detects: Iterable[str],
                   higher_is_better: bool | None) -> tuple[str, list[str]]:
    """(overall verdict, trusted_for) of one key from its per-ladder results.

    Only the ladders in `detects` that were run count. Broken on any of them -> broken; else flat on any
    -> flat; else untested on any (or none run, or no direction) -> untested; else holds.
    """
    claimed = [name for name in detects if name in ladders]
    trusted_for = [name for name in claimed if ladders[name]["verdict"] == "holds"]
    if higher_is_better is None or not claimed:
        return "untested", trusted_for
    verdicts = {ladders[name]["verdict"] for name in claimed}
    for verdict in ("broken", "flat", "untested"):
        if verdict in verdicts:
            return verdict, trusted_for
    return "holds", trusted_for


def uncovered(metrics: Mapping[str, Mapping[str, Any]], ladders: Iterable[str]) -> list[str]:
    """Ladders that no trusted headline metric detects: a headline key whose overall verdict holds and
    whose `trusted_for` names the ladder covers it."""
    covered = {name for entry in metrics.values()
               if entry.get("role") == "headline" and entry.get("verdict") == "holds"
               for name in entry.get("trusted_for", [])}
    return [name for name in ladders if name not in covered]
