"""The ladder plot: every metric along every ladder, one panel per ladder.

Metrics live on unrelated scales (FID in the hundreds, MMD near zero, rates in [0, 1]), and some start
at zero, so each line shows the metric's *badness* (its value, negated when higher is better) as the
change from step 0 divided by its largest change along that ladder: every line starts at 0, a metric
that gets worse at every step climbs to 1, one that gets better falls, a flat one stays at 0.
Headline metrics are solid, diagnostics dashed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

from aebench.reports.validation import shown_keys

AXIS = {"collapse": "shrink factor", "spread": "spread factor", "contamination": "share of uniform points",
        "mode_drop": "clusters kept", "moments": "share of Gaussian draws", "memorisation": "share of training copies"}


def scaled_badness(values: list[float | None], higher_is_better: bool) -> list[float] | None:
    """(b - b0) / max|b - b0| along one ladder; None when a value is missing; zeros when nothing moves."""
    if any(v is None for v in values) or not values:
        return None
    bad = [-v if higher_is_better else v for v in values]
    change = [b - bad[0] for b in bad]
    scale = max(abs(c) for c in change)
    return [c / scale if scale > 0 else 0.0 for c in change]


def ladder_plot(validation: Mapping[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Write the PNG: one panel per ladder, x the step (ticks show the levels), one line per metric key."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ladders = validation.get("ladders", {})
    metrics = validation.get("metrics", {})
    # keys that moved somewhere (a metric flat on every ladder adds a legend entry and nothing else)
    keys = [k for k in shown_keys(validation)
            if any(r.get("verdict") not in ("flat", "untested") for r in metrics[k].get("ladders", {}).values())]
    names = list(ladders)
    cols = min(3, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 2.4, 2.7 * rows + 0.5), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab20")
    colours = {key: cmap(i % 20) for i, key in enumerate(keys)}
    handles: dict[str, Any] = {}
    for ax, name in zip(axes.flat, names):
        levels = ladders[name].get("levels", [])
        for key in keys:
            entry = metrics[key]
            result = entry.get("ladders", {}).get(name)
            if not result:
                continue
            ys = scaled_badness(result.get("values", []), bool(entry["higher_is_better"]))
            if ys is None:
                continue
            headline = entry.get("role") == "headline"
            claimed = name in entry.get("detects", [])
            (line,) = ax.plot(range(len(ys)), ys, color=colours[key], linestyle="-" if headline else "--",
                              linewidth=2.0 if claimed else 1.0, alpha=1.0 if claimed or headline else 0.6,
                              marker="o" if claimed else None, markersize=3)
            handles.setdefault(key, line)
        ax.axhline(0, color="#999", linewidth=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([f"{x:g}" for x in levels], fontsize=7)
        ax.set_xlabel(f"step ({AXIS.get(name, 'level')})", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylim(-1.1, 1.1)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("badness change (scaled, up = worse)", fontsize=7)
    labels = [f"{k} ({(metrics[k].get('role') or '?')[:4]})" for k in handles]
    share = (3.4 * cols) / (3.4 * cols + 2.4)
    fig.tight_layout(rect=(0, 0, share, 0.95))
    fig.legend(list(handles.values()), labels, loc="center left", bbox_to_anchor=(share, 0.5), fontsize=7,
               frameon=False, title="metric (role)\nsolid: headline, dashed: diagnostic\nthick: ladder it claims",
               title_fontsize=7)
    fig.suptitle(title or "Known-answer ladders: each metric's badness along each degradation", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, format="png")
    plt.close(fig)
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as image:  # a 256-colour palette keeps the PNG small enough to commit
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
    return path
