"""The leaderboard from `aebench run --all --decide` results documents: per data set one sentence of
recommendation, the racing rounds, one headline table that fits 100 columns (rank, sampler, the few
metrics that carry the decision, a memorisation flag), and every metric in a collapsible detail.

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
from aebench.reports.judges import judge_text
from aebench.reports.table import race_text
from aebench.verdict.agreement import agreement, judge_names
from aebench.verdict.decision import recommendation
from aebench.verdict.ranking import Verdict, format_rank, judge


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


def spread(entry: dict[str, Any]) -> float | None:
    """Half-width of the entry's interval (over seeds: t std / sqrt(k)), or None."""
    low, high = entry.get("low"), entry.get("high")
    return (float(high) - float(low)) / 2 if is_finite_number(low) and is_finite_number(high) else None


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


MAX_WIDTH = 100  # the headline table fits a 100-column terminal or narrow page
MAX_DECIDING = 3  # metric columns in the headline table


def deciding_metrics(doc: dict[str, Any], verdict: Verdict) -> list[str]:
    """The few ranking metrics that carry the decision: those on which some pair involving a contender was
    decided (a sampler behind a contender, or a trade-off between contenders), the most decisive first;
    every ranking metric when nothing is decided yet."""
    decision = verdict.decision
    ranking = [m.key for m in verdict.metrics.values() if m.status == "ranks"]
    if decision is None or not ranking:
        return []
    from aebench.verdict.decision import compare_rows

    rows = {r["name"]: r.get("metrics", {}) for r in sampler_rows(doc)}
    pairs = compare_rows({n: m for n, m in rows.items() if n in verdict.overall}, decision.metrics)
    counts = {key: 0 for key in ranking}
    for (a, _), pair in pairs.items():
        if a in decision.contenders:
            for key in (*pair.a_wins, *pair.b_wins):
                counts[key] = counts.get(key, 0) + 1
    used = sorted((k for k in ranking if counts.get(k)), key=lambda k: (-counts[k], ranking.index(k)))
    return used or ranking


def memorises(entry: dict[str, Any] | None, info: dict[str, Any]) -> bool:
    """Whether a sampler's latent copies are clearly above nothing: the lower end of its interval beyond
    the metric's equivalence margin (a share), so chance copies never raise the flag."""
    if not entry or not is_finite_number(entry.get("value")):
        return False
    from aebench.verdict.equivalence import Margin

    margin = Margin.parse(info["margin"]).size if info.get("margin") else 0.02
    low = entry.get("low") if is_finite_number(entry.get("low")) else entry["value"]
    return float(low) > margin


def headline_table(doc: dict[str, Any], verdict: Verdict) -> list[str]:
    """rank | sampler | the metrics that carry the decision | memorisation flag, in the verdict's order;
    samplers with identical draws share a row; a sampler that left a race early says when."""
    keys = deciding_metrics(doc, verdict)[:MAX_DECIDING]
    copies_key = next((k for k, i in (doc.get("metric_info") or {}).items() if k == "latent_copies"), None)
    aliases = verdict.aliases
    hidden = {other for others in aliases.values() for other in others}
    rows = {r["name"]: r for r in sampler_rows(doc)}
    contenders = set(verdict.decision.contenders) if verdict.decision else set()
    header = ["rank", "sampler", *(_label(doc, k) for k in keys), "copies"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---:", "---", *["---:"] * len(keys), ":-:"]) + "|"]
    for name in [n for n in verdict.order if n in rows and n not in hidden]:
        row = rows[name]
        label = " = ".join([f"`{name}`", *(f"`{a}`" for a in aliases.get(name, []))])
        label = f"**{label}**" if name in contenders else label
        if row.get("left_round") is not None and name not in contenders:
            label += f" ·r{row['left_round']}"
        rank = verdict.overall.get(name)
        cells = [cell(row["metrics"].get(k), _info(doc, k).get("unit", "")) for k in keys]
        flag = ""
        if copies_key is not None and memorises(row["metrics"].get(copies_key), _info(doc, copies_key)):
            flag = "⚠ " + format_number(row["metrics"][copies_key]["value"], unit="rate")
        lines.append("| " + " | ".join([format_rank(rank) if rank else "", label, *cells, flag]) + " |")
    return lines


def judges_lines(doc: dict[str, Any]) -> list[str]:
    """With several judges (`--features inception,domain`): who they are and, per image headline metric,
    whether they rank the samplers alike (`aebench.verdict.agreement`), one sentence each; where they
    disagree the sentence says so and takes neither order. [] for a run with one judge."""
    records = (doc.get("judges") or {}).get("extractors") or []
    if len(records) < 2:
        return []
    lines = ["**Judges.** Image metrics scored by "
             + ", ".join(judge_text(r, i == 0) for i, r in enumerate(records)) + ".", ""]
    found = agreement(doc)
    if not found:
        return lines + ["No image headline metric was scored by two judges on finished samplers.", ""]
    return lines + [f"- {'⚠ ' if a.disagreements else ''}{a.sentence}" for a in found] + [""]


def dataset_section(doc: dict[str, Any], title: str) -> tuple[str, str]:
    """Markdown for one data set: the recommendation, the racing rounds, the headline table, and every metric
    in a collapsible detail; and the recommendation alone (for the README)."""
    verdict = judge(doc)
    sel = select_metrics(doc, verdict)
    rows = sampler_rows(doc)
    failed = [r["name"] for r in doc.get("samplers", []) if r.get("status") != "ok"]
    seeds = sorted({len(r.get("seeds", [])) for r in rows})
    features = doc.get("features") or {}
    model = doc.get("model") or {}
    decision = verdict.decision
    sentence = recommendation(decision, doc.get("race"), verdict.aliases)
    lines = [f"## {title}", "", f"**{sentence}**", ""]
    race = race_text(doc.get("race"), decision)
    if race:
        lines += [race, ""]
    source = {"validation": "headline metrics that held on this model's known-answer ladders",
              "roles": "headline metrics (no validation section in the results)"}[sel.source]
    margins = ", ".join(f"{m.label} {m.margin.text()}" for m in (decision.metrics if decision else [])
                        if m.margin is not None)
    lines.append(f"Decided by {source}: a sampler is ahead of another when it is clearly better on one of them and "
                 f"worse on none; differences inside a metric's equivalence margin ({margins or 'none declared'}) "
                 f"count as none. **Bold**: can be first; ·rK: left the race after round K; ⚠: copies training "
                 f"latents. Cells: mean ± half the 95% interval.")
    lines.append("")
    if sel.headline:
        lines += headline_table(doc, verdict) + [""]
    else:
        lines += ["No trusted metric in these results.", ""]
    lines.append(f"{len(rows)} samplers, n = {rows[0]['n'] if rows else '?'} decoded images per sampler and seed, "
                 f"{'/'.join(map(str, seeds)) or '?'} seed(s); model N={model.get('latent_dim', '?')} "
                 f"(checksum {str(model.get('checksum', '?'))[:12]}); image features: "
                 f"{', '.join(judge_names(doc)) or features.get('extractor', 'none')}.")
    if sel.untrusted:
        lines.append("Not ranked: " + "; ".join(f"`{k}` ({v})" for k, v in sel.untrusted.items()) + ".")
    if sel.flat:
        lines.append("Set aside, the same for every sampler: " + ", ".join(f"`{k}`" for k in sel.flat) + ".")
    if failed:
        lines.append("Failed: " + ", ".join(f"`{n}`" for n in failed) + ".")
    lines += [""] + judges_lines(doc)
    lines += ["<details><summary>Every headline metric and diagnostic, and what the fits learned</summary>", ""]
    keys = sel.headline + sel.diagnostic
    if keys:
        header = ["sampler"] + [_label(doc, k) + (" *(diag.)*" if k in sel.diagnostic else "") for k in keys]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(keys)) + "|")
        for name in [n for n in verdict.order if n in {r["name"] for r in rows}] + \
                [r["name"] for r in rows if r["name"] not in verdict.order]:
            r = next(x for x in rows if x["name"] == name)
            cells = [cell(r["metrics"].get(k), _info(doc, k).get("unit", "")) for k in keys]
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append("")
    fits = fit_summary(doc)
    if fits:
        lines += ["What the fits learned (log-likelihoods per point; `_whitened`: in whitened principal coordinates, "
                  "comparable within a sampler's line):", ""] + fits + [""]
    lines += ["</details>", ""]
    return "\n".join(lines), sentence


def leaderboard_markdown(docs: dict[str, dict[str, Any]], command: str) -> tuple[str, str]:
    """The full page (a section per data set) and a short README snippet (the recommendation per data set)."""
    page = ["# aebench leaderboard", "",
            "Every built-in sampler on each data set, raced until every pair that could be first is decided "
            "(`aebench run --all --decide`); regenerate with:", "", "```bash", command, "```", ""]
    snippet = []
    for name, doc in docs.items():
        text, sentence = dataset_section(doc, name)
        page.append(text)
        snippet.append(f"- **{name}**: {sentence}")
    return "\n".join(page).rstrip() + "\n", "\n".join(snippet) + "\n"


def replace_block(text: str, block: str, start: str = "<!-- leaderboard:start -->",
                  end: str = "<!-- leaderboard:end -->") -> str:
    """`text` with the part between the start and end markers replaced by `block` (markers kept)."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"markers {start} ... {end} not found")
    return text[:i + len(start)] + "\n" + block.rstrip() + "\n" + text[j:]
