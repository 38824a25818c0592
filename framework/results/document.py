"""Writing the results document (results.json; its shape and version live in `aebench.results.schema`):
provenance, per-cell numbers and their per-sampler aggregate over seeds. Written atomically after every
sampler so a crash never leaves a file that looks complete (`status` says "running" until the end)."""

from __future__ import annotations

import datetime as _dt
import math
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from aebench import __version__
from aebench.infra.io import write_json_atomic
from aebench.metric import MetricValue


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def environment(device: torch.device) -> dict[str, Any]:
    import numpy

    from aebench.infra.device import describe_device

    env = {"aebench": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
           "python": sys.version.split()[0], "platform": platform.platform()}
    env.update(describe_device(device))
    return env


def aggregate(per_seed: list[dict[str, MetricValue]]) -> dict[str, dict[str, Any]]:
    """Combine one dict of MetricValues per seed into {key: {value, std, low, high, per_seed, ...}}.
    With one seed the metric's own interval is kept. With k seeds, value = mean over seeds and the 95%
    interval of that mean is mean ± t(k-1) std / sqrt(k) (Student's t: two or three seeds say little
    about the spread), widened to the seeds' own intervals combined (root mean square half-width /
    sqrt(k)) where those are wider: a sampler that draws the same points at every seed has no seed
    spread, yet its number still comes from a finite sample. The verdict and `aebench compare` call
    two rows different only where these intervals do not overlap."""
    keys: list[str] = []
    for d in per_seed:
        keys += [k for k in d if k not in keys]
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = [d[key] for d in per_seed if key in d]
        nums = [v.value for v in values]
        first = values[0]
        entry: dict[str, Any] = {"higher_is_better": first.higher_is_better}
        if first.n is not None:
            entry["n"] = first.n
        if first.info:
            entry["info"] = first.info
        if len(values) == 1:
            entry["value"] = _clean(nums[0])
            if first.low is not None:
                entry["low"], entry["high"] = _clean(first.low), _clean(first.high)
        else:
            finite = [x for x in nums if math.isfinite(x)]
            mean = statistics.fmean(finite) if finite else float("nan")
            std = statistics.stdev(finite) if len(finite) > 1 else 0.0
            half = seed_half_width(std, len(finite), [v for v in values if math.isfinite(v.value)])
            entry.update(value=_clean(mean), std=_clean(std), low=_clean(mean - half), high=_clean(mean + half),
                         per_seed=[_clean(x) for x in nums])
        out[key] = entry
    return out


def seed_half_width(std: float, k: int, values: list[MetricValue]) -> float:
    """Half-width of the 95% interval of a mean over `k` seeds (see `aggregate`)."""
    from scipy.stats import t as student_t

    if k == 0:
        return float("nan")
    spread = float(student_t.ppf(0.975, k - 1)) * std / math.sqrt(k) if k > 1 else 0.0
    own = [((v.high - v.low) / 2) ** 2 for v in values
           if v.low is not None and v.high is not None and math.isfinite(v.low) and math.isfinite(v.high)]
    within = math.sqrt(sum(own) / len(own)) / math.sqrt(k) if len(own) == len(values) and own else 0.0
    return max(spread, within)


def _clean(x: float | None) -> float | None:
    """JSON has no NaN/Inf: store them as null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def write_results(doc: dict[str, Any], out_dir: Path) -> Path:
    return write_json_atomic(Path(out_dir) / "results.json", doc)
