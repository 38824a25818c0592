"""Leaderboard tables from `aebench run` results documents: which sampler wins on each trusted metric,
by how much, and whether the winner's interval overlaps the runner-up's.

Which metrics rank: the results' own `metric_info` says each key's role; a key ranks when its role is
'headline' and, if the document carries a `validation` section, its verdict there is 'holds'.
Diagnostic keys (hit rates, latent recall) are shown, never ranked. A document without roles (older
runs) falls back to `FALLBACK_HEADLINE` / `FALLBACK_DIAGNOSTIC`, restricted to the keys it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# used only when a results document declares no roles
FALLBACK_HEADLINE = ("latent_fd", "latent_mmd", "latent_1nn", "fid_recon", "kid_recon", "fid_inf_recon")
FALLBACK_DIAGNOSTIC = ("hit_ellipsoid", "hit_density", "hit_knn", "hit_box", "latent_recall")
# metrics whose best value is a point, not an end of the scale
IDEAL = {"latent_1nn": 0.5}
# shares in [0, 1] shown as percentages when the results do not declare units
RATE_KEYS = ("latent_recall", "latent_precision", "latent_coverage")


@dataclass
class Selection:
    headline: list[str]
    diagnostic: list[str]
    source: str  # 'validation', 'roles' or 'fallback'
    untrusted: dict[str, str] = field(default_factory=dict)  # headline keys left out, with their verdict


def sampler_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Sampler rows that ran (status ok, with metrics)."""
    return [r for r in doc.get("samplers", []) if r.get("status") == "ok" and r.get("metrics")]


def select_metrics(doc: dict[str, Any]) -> Selection:
    """Headline (ranking) and diagnostic keys of a results document; see the module docstring."""
    info: dict[str, dict[str, Any]] = doc.get("metric_info") or {}
    present = {k for r in sampler_rows(doc) for k in r["metrics"]}
    keys = [k for k in info if k in present] + sorted(present - set(info))
    roles = {k: (info.get(k) or {}).get("role") for k in keys}
    if not any(roles.values()):
        return Selection([k for k in FALLBACK_HEADLINE if k in present],
                         [k for k in FALLBACK_DIAGNOSTIC if k in present], "fallback")
    validation = (doc.get("validation") or {}).get("metrics") or {}
    headline, untrusted = [], {}
    for k in keys:
        if roles[k] != "headline":
            continue
        verdict = (validation.get(k) or {}).get("verdict") if validation else "holds"
        if verdict == "holds":
            headline.append(k)
        else:
            untrusted[k] = verdict or "untested"
    diagnostic = [k for k in keys if roles[k] == "diagnostic"]
    return Selection(headline, diagnostic, "validation" if validation else "roles", untrusted)


def _badness(key: str, entry: dict[str, Any], value: float) -> float:
    if key in IDEAL:
        return abs(value - IDEAL[key])
    hib = entry.get("higher_is_better")
    return -value if hib else value


def _interval(entry: dict[str, Any]) -> tuple[float, float] | None:
    low, high = entry.get("low"), entry.get("high")
    return (float(low), float(high)) if low is not None and high is not None else None


def spread(entry: dict[str, Any]) -> float | None:
    """Half-width of the entry's interval (over seeds: 1.96 std / sqrt(k)), or None."""
    iv = _interval(entry)
    return None if iv is None else (iv[1] - iv[0]) / 2


def winner(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The best sampler on `key`, the runner-up, the gap between them and whether their intervals overlap."""
    rows = [(r["name"], r["metrics"][key]) for r in sampler_rows(doc)
            if key in r["metrics"] and r["metrics"][key].get("value") is not None]
    if not rows:
        return None
    ranked = sorted(rows, key=lambda item: _badness(key, item[1], float(item[1]["value"])))
    best_name, best = ranked[0]
    out: dict[str, Any] = {"key": key, "winner": best_name, "value": float(best["value"]), "runner_up": None,
                           "gap": None, "relative_gap": None, "overlap": None}
    if len(ranked) > 1:
        second_name, second = ranked[1]
        gap = abs(float(second["value"]) - float(best["value"]))
        a, b = _interval(best), _interval(second)
        out.update(runner_up=second_name, runner_up_value=float(second["value"]), gap=gap,
                   relative_gap=gap / abs(float(second["value"])) if float(second["value"]) else None,
                   overlap=None if a is None or b is None else bool(a[0] <= b[1] and b[0] <= a[1]))
    return out


# what a fit learned that explains a learned sampler's rank (from each row's `fit_info`, when the run recorded it)
FIT_KEYS = ("k", "fallback", "heldout_loglik", "gaussian_heldout_loglik", "bandwidth", "heldout_loglik_whitened",
            "best_heldout_loglik_whitened", "best_heldout_elbo_whitened", "final_train_loglik_whitened",
            "final_train_elbo_whitened", "gaussian_heldout_loglik_whitened", "gamma", "epochs", "best_epoch", "stopped",
            "core_kept", "core_total", "subspace_dims")


def fit_summary(doc: dict[str, Any]) -> list[str]:
    """One line per sampler whose row carries `fit_info`: the held-out likelihoods, bandwidth, epochs, core size.
    With few training latents this is where over-fitting shows (training far above held-out likelihood, or a
    learned density below a single Gaussian's held-out likelihood)."""
    lines = []
    for r in sampler_rows(doc):
        info = r.get("fit_info")
        if isinstance(info, list):
            info = info[0] if info else None
        if not isinstance(info, dict):
            continue
        parts = [f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in info.items() if k in FIT_KEYS and v is not None]
        if parts:
            lines.append(f"- `{r['name']}`: " + ", ".join(parts))
    return lines


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if unit == "rate":
        return f"{100 * x:.1f}%"
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}"


def cell(entry: dict[str, Any] | None, unit: str = "") -> str:
    """'mean ± spread' of one metric entry (spread: half the interval), '–' when missing."""
    if not entry or entry.get("value") is None:
        return "–"
    s = spread(entry)
    if unit == "rate":
        return _fmt(entry["value"], unit) + ("" if s is None else f" ± {100 * s:.1f}")
    return _fmt(entry["value"]) + ("" if s is None else f" ± {_fmt(s)}")


def _unit(info: dict[str, Any], key: str) -> str:
    declared = (info.get(key) or {}).get("unit")
    if declared is not None:
        return declared
    return "rate" if key.startswith("hit_") or key in RATE_KEYS else ""


def _label(doc: dict[str, Any], key: str) -> str:
    info = (doc.get("metric_info") or {}).get(key) or {}
    label = info.get("label") or key
    arrow = "" if key in IDEAL else {True: " ↑", False: " ↓"}.get(info.get("higher_is_better"), "")
    if not arrow:
        hib = next((r["metrics"][key].get("higher_is_better") for r in sampler_rows(doc) if key in r["metrics"]), None)
        arrow = " (→0.5)" if key in IDEAL else {True: " ↑", False: " ↓"}.get(hib, "")
    return f"{label}{arrow}"


def dataset_section(doc: dict[str, Any], title: str) -> tuple[str, list[dict[str, Any]]]:
    """Markdown for one data set (a table, then the winners) and the winners as data."""
    sel = select_metrics(doc)
    info = doc.get("metric_info") or {}
    rows = sampler_rows(doc)
    failed = [r["name"] for r in doc.get("samplers", []) if r.get("status") != "ok"]
    seeds = sorted({len(r.get("seeds", [])) for r in rows})
    lines = [f"## {title}", ""]
    features = doc.get("features") or {}
    model = doc.get("model") or {}
    lines.append(f"{len(rows)} samplers, n = {rows[0]['n'] if rows else '?'} points per sampler and seed, "
                 f"{'/'.join(map(str, seeds)) or '?'} seed(s); model N={model.get('latent_dim', '?')} "
                 f"(checksum {str(model.get('checksum', '?'))[:12]}); image features: "
                 f"{features.get('extractor', 'none')}. Cells: mean ± half the 95% interval (over seeds when there are "
                 f"several, else the metric's own).")
    source = {"validation": "headline metrics that `aebench validate` found to hold",
              "roles": "headline metrics (no validation section in the results)",
              "fallback": "a fixed list (the results declare no metric roles)"}[sel.source]
    lines.append(f"Ranked on {source}; diagnostics are shown, never ranked.")
    if sel.untrusted:
        lines.append("Not ranked (verdict): " + ", ".join(f"`{k}` ({v})" for k, v in sel.untrusted.items()) + ".")
    if failed:
        lines.append("Failed: " + ", ".join(f"`{n}`" for n in failed) + ".")
    lines.append("")
    keys = sel.headline + sel.diagnostic
    winners = [w for w in (winner(doc, k) for k in sel.headline) if w]
    best = {w["key"]: w["winner"] for w in winners}
    if keys:
        header = ["sampler"] + [_label(doc, k) + (" *(diag.)*" if k in sel.diagnostic else "") for k in keys]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(keys)) + "|")
        for r in rows:
            cells = []
            for k in keys:
                text = cell(r["metrics"].get(k), _unit(info, k))
                cells.append(f"**{text}**" if best.get(k) == r["name"] else text)
            lines.append(f"| `{r['name']}` | " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += ["No trusted metric in these results.", ""]
    for w in winners:
        if w["runner_up"] is None:
            lines.append(f"- **{_label(doc, w['key'])}**: `{w['winner']}` ({_fmt(w['value'])}), the only sampler scored.")
            continue
        rel = f", {100 * w['relative_gap']:.1f}%" if w["relative_gap"] is not None else ""
        overlap = {True: "intervals overlap: not a clear win", False: "intervals do not overlap",
                   None: "no intervals (one seed)"}[w["overlap"]]
        lines.append(f"- **{_label(doc, w['key'])}**: `{w['winner']}` {_fmt(w['value'])} ahead of `{w['runner_up']}` "
                     f"{_fmt(w['runner_up_value'])} by {_fmt(w['gap'])}{rel}; {overlap}.")
    lines.append("")
    fits = fit_summary(doc)
    if fits:
        lines += ["What the fits learned (log-likelihoods per point; `_whitened`: in whitened principal coordinates, "
                  "comparable within a sampler's line):", ""] + fits + [""]
    return "\n".join(lines), winners


def leaderboard_markdown(docs: dict[str, dict[str, Any]], command: str) -> tuple[str, str]:
    """The full page (a section per data set) and a short README snippet (winners per data set)."""
    page = ["# aebench leaderboard", "",
            "Every built-in sampler on each data set; regenerate with:", "", "```bash", command, "```", ""]
    snippet = ["| data set | metric | winner | runner-up | gap | intervals |", "|---|---|---|---|---:|---|"]
    for name, doc in docs.items():
        text, winners = dataset_section(doc, name)
        page.append(text)
        for w in winners:
            overlap = {True: "overlap", False: "separate", None: "–"}[w["overlap"]]
            snippet.append(f"| {name} | {_label(doc, w['key'])} | `{w['winner']}` {_fmt(w['value'])} | "
                           f"{('`' + w['runner_up'] + '` ' + _fmt(w['runner_up_value'])) if w['runner_up'] else '–'} | "
                           f"{_fmt(w['gap'])} | {overlap} |")
    return "\n".join(page).rstrip() + "\n", "\n".join(snippet) + "\n"


def replace_block(text: str, block: str, start: str = "<!-- leaderboard:start -->",
                  end: str = "<!-- leaderboard:end -->") -> str:
    """`text` with the part between the start and end markers replaced by `block` (markers kept)."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"markers {start} ... {end} not found")
    return text[:i + len(start)] + "\n" + block.rstrip() + "\n" + text[j:]
