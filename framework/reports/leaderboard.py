"""Leaderboard tables from `aebench run` results documents: which sampler wins on each trusted metric,
by how much, and whether the winner's interval overlaps the runner-up's.

The ranking is the verdict's (`aebench.verdict.ranking.judge`), so the leaderboard, the reports and
`compare` agree: a metric ranks when the results declare it a headline metric, it held on the
document's `validation` section (when there is one), its extractor is a validated judge (image
metrics), and it tells the samplers apart; its winner is the first of `metric_order` (rank range, then
point value, by the distance to a declared `ideal` where there is one). Diagnostics are shown, never
ranked. Numbers are written by `aebench.infra.numbers.format_number`, as in every report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aebench.infra.numbers import format_number, is_finite_number
from aebench.verdict.ranking import Estimate, Verdict, clearly_better, directed, judge, metric_order


@dataclass
class Selection:
    headline: list[str]  # metrics that rank, in the document's order
    diagnostic: list[str]
    source: str  # 'validation' (ranked on this model's validation) or 'roles' (declared headline metrics)
    untrusted: dict[str, str] = field(default_factory=dict)  # headline keys left out, with the verdict's reason
    flat: list[str] = field(default_factory=list)  # headline keys with the same value for every sampler


def sampler_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Sampler rows that ran (status ok, with metrics)."""
    return [r for r in doc.get("samplers", []) if r.get("status") == "ok" and r.get("metrics")]


def select_metrics(doc: dict[str, Any], verdict: Verdict | None = None) -> Selection:
    """Ranking and diagnostic keys of a results document, as the verdict judges them."""
    verdict = verdict or judge(doc)
    present = {k for r in sampler_rows(doc) for k in r["metrics"]}
    ranking = [m.key for m in verdict.metrics.values() if m.status == "ranks" and m.key in present]
    diagnostic = [m.key for m in verdict.metrics.values() if m.status == "diagnostic" and m.key in present]
    untrusted = {m.key: m.reason for m in verdict.metrics.values() if m.status == "untrusted" and m.key in present}
    flat = [m.key for m in verdict.metrics.values()
            if m.status == "flat" and m.info.get("role") == "headline" and m.key in present]
    return Selection(ranking, diagnostic, "validation" if verdict.validated else "roles", untrusted, flat)


def _interval(entry: dict[str, Any]) -> tuple[float, float] | None:
    low, high = entry.get("low"), entry.get("high")
    return (float(low), float(high)) if is_finite_number(low) and is_finite_number(high) else None


def spread(entry: dict[str, Any]) -> float | None:
    """Half-width of the entry's interval (over seeds: t std / sqrt(k)), or None."""
    iv = _interval(entry)
    return None if iv is None else (iv[1] - iv[0]) / 2


def winner(doc: dict[str, Any], key: str, verdict: Verdict | None = None) -> dict[str, Any] | None:
    """The first sampler on a ranking metric `key`, the runner-up, the gap between their values and
    whether their intervals overlap (None when either has none); None when `key` does not rank."""
    verdict = verdict or judge(doc)
    judgement = verdict.metrics.get(key)
    if judgement is None or judgement.status != "ranks":
        return None
    order = metric_order(doc, judgement)
    if not order:
        return None
    rows = {r["name"]: r["metrics"][key] for r in sampler_rows(doc) if key in r["metrics"]}
    best_name, best = order[0], rows[order[0]]
    out: dict[str, Any] = {"key": key, "winner": best_name, "value": float(best["value"]), "runner_up": None,
                           "gap": None, "relative_gap": None, "overlap": None}
    if len(order) > 1:
        second_name, second = order[1], rows[order[1]]
        gap = abs(float(second["value"]) - float(best["value"]))
        a, b = Estimate.of(best), Estimate.of(second)
        overlap = None
        if a is not None and b is not None and a.has_interval and b.has_interval:
            (da, higher), (db, _) = directed(a, judgement.info), directed(b, judgement.info)
            overlap = not clearly_better(da, db, higher)
        out.update(runner_up=second_name, runner_up_value=float(second["value"]), gap=gap,
                   relative_gap=gap / abs(float(second["value"])) if float(second["value"]) else None,
                   overlap=overlap)
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
        if not isinstance(info, dict):
            continue
        parts = [f"{k}={format_number(v) if isinstance(v, float) else v}" for k, v in info.items()
                 if k in FIT_KEYS and v is not None]
        if parts:
            lines.append(f"- `{r['name']}`: " + ", ".join(parts))
    return lines


def cell(entry: dict[str, Any] | None, unit: str = "") -> str:
    """'mean ± spread' of one metric entry (spread: half its 95% interval), '—' when missing."""
    if not entry or entry.get("value") is None:
        return format_number(None)
    s = spread(entry)
    value = format_number(entry["value"], unit=unit)
    return value if s is None else f"{value} ± {format_number(s, unit=unit, like=entry['value'])}"


def _info(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return (doc.get("metric_info") or {}).get(key) or {}


def _label(doc: dict[str, Any], key: str) -> str:
    """The metric's declared label with its direction: ↑, ↓, or (→ideal) for a best point."""
    info = _info(doc, key)
    label = info.get("label") or key
    if is_finite_number(info.get("ideal")):
        return f"{label} (→{format_number(info['ideal'], unit=info.get('unit', ''))})"
    return label + {True: " ↑", False: " ↓"}.get(info.get("higher_is_better"), "")


def _value(doc: dict[str, Any], key: str, value: float | None) -> str:
    return format_number(value, unit=_info(doc, key).get("unit", ""))


def dataset_section(doc: dict[str, Any], title: str) -> tuple[str, list[dict[str, Any]]]:
    """Markdown for one data set (a table, then the winners) and the winners as data."""
    verdict = judge(doc)
    sel = select_metrics(doc, verdict)
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
    source = {"validation": "headline metrics that held on this model's known-answer ladders",
              "roles": "headline metrics (no validation section in the results)"}[sel.source]
    lines.append(f"Ranked as the verdict ranks: {source}; ties where intervals overlap; diagnostics are shown, "
                 f"never ranked.")
    if sel.untrusted:
        lines.append("Not ranked: " + "; ".join(f"`{k}` ({v})" for k, v in sel.untrusted.items()) + ".")
    if sel.flat:
        lines.append("Set aside, the same for every sampler: " + ", ".join(f"`{k}`" for k in sel.flat) + ".")
    if failed:
        lines.append("Failed: " + ", ".join(f"`{n}`" for n in failed) + ".")
    lines.append("")
    keys = sel.headline + sel.diagnostic
    winners = [w for w in (winner(doc, k, verdict) for k in sel.headline) if w]
    best = {w["key"]: w["winner"] for w in winners}
    if keys:
        header = ["sampler"] + [_label(doc, k) + (" *(diag.)*" if k in sel.diagnostic else "") for k in keys]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(keys)) + "|")
        for r in rows:
            cells = []
            for k in keys:
                text = cell(r["metrics"].get(k), _info(doc, k).get("unit", ""))
                cells.append(f"**{text}**" if best.get(k) == r["name"] else text)
            lines.append(f"| `{r['name']}` | " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += ["No trusted metric in these results.", ""]
    for w in winners:
        key = w["key"]
        if w["runner_up"] is None:
            lines.append(f"- **{_label(doc, key)}**: `{w['winner']}` ({_value(doc, key, w['value'])}), "
                         f"the only sampler scored.")
            continue
        rel = f", {100 * w['relative_gap']:.1f}%" if w["relative_gap"] is not None else ""
        overlap = {True: "intervals overlap: not a clear win", False: "intervals do not overlap",
                   None: "no intervals (one seed)"}[w["overlap"]]
        lines.append(f"- **{_label(doc, key)}**: `{w['winner']}` {_value(doc, key, w['value'])} ahead of "
                     f"`{w['runner_up']}` {_value(doc, key, w['runner_up_value'])} by {_value(doc, key, w['gap'])}"
                     f"{rel}; {overlap}.")
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
            overlap = {True: "overlap", False: "separate", None: format_number(None)}[w["overlap"]]
            key = w["key"]
            runner_up = (f"`{w['runner_up']}` {_value(doc, key, w['runner_up_value'])}" if w["runner_up"]
                         else format_number(None))
            snippet.append(f"| {name} | {_label(doc, key)} | `{w['winner']}` {_value(doc, key, w['value'])} | "
                           f"{runner_up} | {_value(doc, key, w['gap'])} | {overlap} |")
    return "\n".join(page).rstrip() + "\n", "\n".join(snippet) + "\n"


def replace_block(text: str, block: str, start: str = "<!-- leaderboard:start -->",
                  end: str = "<!-- leaderboard:end -->") -> str:
    """`text` with the part between the start and end markers replaced by `block` (markers kept)."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"markers {start} ... {end} not found")
    return text[:i + len(start)] + "\n" + block.rstrip() + "\n" + text[j:]
