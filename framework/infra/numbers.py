"""Plain numbers read from results documents (where NaN and Inf are stored as null): the finiteness
check and the one number format every report, the leaderboard and the suite table use."""

from __future__ import annotations

import math
from typing import Any


def is_finite_number(x: Any) -> bool:
    """Whether `x` is an int or float (not a bool) with a finite value."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


SMALL = 1e-4  # below this, numbers are written in scientific notation (5.9e-11, not 0.000000000059)


def _decimals(value: float) -> int:
    """Decimals that show `value` as people read it: one from 100 up, two from 1 up, else three
    significant digits."""
    if abs(value) >= 100:
        return 1
    if abs(value) >= 1:
        return 2
    if value == 0:
        return 0
    return min(12, 2 - math.floor(math.log10(abs(value))))


def format_number(value: float | None, *, unit: str = "", like: float | None = None) -> str:
    """A value as people read it: shares (unit 'rate') as percentages with one decimal; else one
    decimal from 100 up, two from 1 up, three significant digits below (scientific notation under
    1e-4). `like`: use the decimals of that value instead (a spread printed next to its mean)."""
    if value is None:
        return "—"
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if unit == "rate":
        return f"{100 * value:.1f}%"
    ref = value if like is None or not math.isfinite(like) or like == 0 else float(like)
    if ref != 0 and abs(ref) < SMALL:
        return f"{value:.2g}" if like is not None and like != value else f"{value:.3g}"
    return f"{value:.{_decimals(ref)}f}"
