"""Practical equivalence: two samplers whose difference on a metric lies inside a stated margin with 95%
confidence, by two one-sided tests (TOST, Schuirmann 1987).

Overlapping intervals only ever say "not separated yet": more data narrows them, but two samplers that
really are close (six samplers within 2.6% latent FD of each other on ORL at n = 4096) never separate.
A margin is the size of difference that does not matter, stated in advance and declared on the metric's
`Column` (justified in docs/metrics.md by how far the known-answer ladders move the metric: a sample
degraded by the second step of a ladder the metric detects moves it by more than the margin). With the
margin, such a tie can end: "equivalent within 3% latent FD".

Each row's number is a mean over seeds with a Student-t interval (or one seed with the metric's own
bootstrap interval, a normal one); its standard error and degrees of freedom are read back from the
interval, and the difference of two rows gets Welch's degrees of freedom. Equivalent when the 90%
interval of the difference lies inside (-margin, +margin): both one-sided tests reject at 5%.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from aebench.errors import OptionError
from aebench.infra.numbers import is_finite_number

ALPHA = 0.05  # each one-sided test: together a 95% confidence statement of equivalence
_NORMAL_975 = 1.959963984540054  # the bootstrap intervals are 95% percentile intervals


@dataclass(frozen=True)
class Margin:
    """How far apart two values may be and still count as the same: `size` as a share of the smaller
    magnitude of the two (`relative`, "3%") or in the metric's own unit (absolute, "0.01")."""

    size: float
    relative: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.size) and self.size > 0):
            raise OptionError(f"An equivalence margin must be a positive number, got {self.size!r}.")

    def bound(self, a: float, b: float) -> float:
        """The largest difference that counts as equivalent between values `a` and `b`."""
        return self.size * min(abs(a), abs(b)) if self.relative else self.size

    def text(self) -> str:
        return f"{100 * self.size:g}%" if self.relative else f"{self.size:g}"

    @classmethod
    def parse(cls, text: str | float) -> "Margin":
        """'3%' (relative) or '0.01' (absolute, in the metric's unit)."""
        raw = str(text).strip()
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(%?)", raw)
        if not match:
            raise OptionError(f"Cannot read the margin {raw!r}; write a share such as 3% or an absolute size such as 0.01.")
        size = float(match.group(1))
        return cls(size / 100, True) if match.group(2) else cls(size, False)


@dataclass(frozen=True)
class Spread:
    """A row's mean with its standard error and degrees of freedom (inf: a normal interval)."""

    mean: float
    se: float
    df: float

    @classmethod
    def of(cls, entry: Mapping[str, Any] | None) -> "Spread | None":
        """Read back from a results entry's 95% interval: with k seeds (`per_seed`) the interval is
        mean ± t(0.975, k-1) se; with one seed it is the metric's bootstrap interval, taken as normal.
        None without a finite value and interval."""
        if not entry or not all(is_finite_number(entry.get(k)) for k in ("value", "low", "high")):
            return None
        value, low, high = float(entry["value"]), float(entry["low"]), float(entry["high"])
        half = max(high - value, value - low, 0.0)
        seeds = entry.get("per_seed")
        k = len(seeds) if isinstance(seeds, list) else 1
        if k > 1:
            from scipy.stats import t as student_t

            return cls(value, half / float(student_t.ppf(0.975, k - 1)), float(k - 1))
        return cls(value, half / _NORMAL_975, math.inf)


def difference(a: Spread, b: Spread) -> tuple[float, float, float]:
    """(a - b, its standard error, Welch-Satterthwaite degrees of freedom)."""
    var = a.se ** 2 + b.se ** 2
    parts = [s.se ** 4 / s.df for s in (a, b) if math.isfinite(s.df) and s.df > 0 and s.se > 0]
    df = var ** 2 / sum(parts) if parts and var > 0 else math.inf
    return a.mean - b.mean, math.sqrt(var), df


def one_sided_quantile(df: float, alpha: float = ALPHA) -> float:
    """t(1 - alpha, df), the normal quantile when df is infinite."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    return float(norm.ppf(1 - alpha)) if not math.isfinite(df) else float(student_t.ppf(1 - alpha, df))


def equivalent(a: Spread, b: Spread, bound: float, alpha: float = ALPHA) -> bool:
    """Two one-sided tests: is |mean(a) - mean(b)| < bound with confidence 1 - 2 alpha per side? The
    (1 - 2 alpha) interval of the difference must lie strictly inside (-bound, bound)."""
    d, se, df = difference(a, b)
    q = one_sided_quantile(df, alpha)
    return d - q * se > -bound and d + q * se < bound


def seeds_to_settle(a: Spread, b: Spread, bound: float, seeds: int, limit: int = 100_000) -> int | None:
    """About how many seeds per row would settle an open pair if the means stayed where they are and the
    standard errors shrank by sqrt(seeds): the smallest count at which either the 90% interval of the
    difference fits inside the margin (equivalent) or the rows' 95% intervals no longer overlap
    (separated). None when no count up to `limit` would (the difference sits on the margin)."""
    from scipy.stats import t as student_t

    d = abs(a.mean - b.mean)

    def settled(k: int) -> bool:
        scale = math.sqrt(seeds / k)
        sa, sb = a.se * scale, b.se * scale
        se = math.hypot(sa, sb)
        if d + float(student_t.ppf(1 - ALPHA, 2 * (k - 1))) * se < bound:
            return True
        return d > float(student_t.ppf(0.975, k - 1)) * (sa + sb)

    if not settled(limit):
        return None
    low, high = max(seeds, 1), limit  # settled(high) holds; find the smallest such count above `seeds`
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if settled(mid) else (mid, high)
    return high


__all__ = ["ALPHA", "Margin", "Spread", "difference", "equivalent", "one_sided_quantile", "seeds_to_settle"]
