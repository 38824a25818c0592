"""Checks on plain numbers read from results documents (where NaN and Inf are stored as null)."""

from __future__ import annotations

import math
from typing import Any


def is_finite_number(x: Any) -> bool:
    """Whether `x` is an int or float (not a bool) with a finite value."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
