"""report.md: a results file as GitHub-flavoured markdown that fits a CI step summary.

The pieces (provenance, metric table, regions, notes, figure links) are built as plain data here and
rendered twice: as markdown below and as HTML in `aebench.reports.html`, so both say the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from aebench.io import write_text_atomic
from aebench.reports.table import (
    best_per_metric,
    format_metric,
    format_number,
    metric_columns,
    metric_label,
    result_rows,
)

FIGURE_LABELS = {"grid": "samples", "strips": "paths", "scatter": "latent scatter", "along_t": "hits along t"}
REPORT_NAME = "report.md"


def _version_text(env: Mapping[str, Any]) -> str:
    parts = [f"{k} {env[k]}" for k in ("aebench", "torch", "python") if env.get(k)]
    if env.get("platform"):
        parts.append(str(env["platform"]))
    device = env.get("device") or "?"
    if env.get("gpu"):
        device += f" ({env['gpu']})"
    return ", ".join(parts) + f"; device {device}"


def provenance(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs saying where every number comes from."""
    cfg, data, model = (results.get("config") or {}), (results.get("dataset") or {}), (results.get("model") or {})
    feats, env = (results.get("features") or {}), (results.get("environment") or {})
    items: list[tuple[str, str]] = []
    if data or cfg.get("dataset"):
        shape = "x".join(str(s) for s in data.get("image_shape", []))
        text = f"{data.get('name', cfg.get('dataset', '?'))}: {data.get('n_train', '?')} train / {data.get('n_heldout', '?')} held-out images"
        text += f" of {shape}" if shape else ""
        text += f", fingerprint {str(data['fingerprint'])[:12]}" if data.get("fingerprint") else ""
        if data.get("options"):
            text += ", options " + ", ".join(f"{k}={v}" for k, v in data["options"].items())
        items.append(("data set", text))
        if data.get("citation"):
            items.append(("citation", str(data["citation"])))
    if model:
        text = f"checksum {str(model.get('checksum', '?'))[:12]}, {model.get('architecture', '?')}, latent dim {model.get('latent_dim', '?')}"
        if model.get("heldout_mse") is not None:
            text += f", held-out MSE {model['heldout_mse']:.3g}"
            if model.get("baseline_mse") is not None:
                text += f" (mean image: {model['baseline_mse']:.3g})"
        items.append(("model", text))
    if feats:
        judge = "yes" if feats.get("judge") else "no: smoke tests only, do not rank samplers by it"
        text = f"{feats.get('extractor', '?')}"
        text += f" ({feats['identity']})" if feats.get("identity") else ""
        text += f"; validated judge: {judge}; reference: {feats.get('reference', '?')} images, n_real {feats.get('n_real', '?')}"
        items.append(("image features", text))
    seeds = cfg.get("seeds")
    items.append(("samples", f"n {cfg.get('n', '?')} per sampler and seed; seeds {', '.join(map(str, seeds)) if seeds else '?'}"))
    if cfg.get("target") is not None:
        items.append(("regions", f"calibrated to accept {format_number(cfg['target'], rate=True)} of held-out latents"))
    if env:
        items.append(("software", _version_text(env)))
    when = str(results.get("created") or "?") + (f" to {results['finished']}" if results.get("finished") else "")
    items.append(("run", f"status {results.get('status', '?')}, {when}"))
    return items


def metric_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of (text, is_best) cells: name, kind, one cell per metric, time; failed rows say why."""
    keys = metric_columns(results)
    best = best_per_metric(results, keys)
    header = ["sampler", "", *(metric_label(results, k) for k in keys), "time"]
    rows = []
    for row in result_rows(results):
        is_ref = row.get("kind") == "reference"
        cells = [(row["name"], False), ("ref" if is_ref else "", False)]
        if row.get("status", "ok") != "ok":
            cells += [("failed", False)] + [("", False)] * max(0, len(keys) - 1)
        else:
            cells += [
                (format_metric(results, k, row.get("metrics", {}).get(k)), not is_ref and row["name"] in best.get(k, ()))
                for k in keys
            ]
        total = row.get("timing", {}).get("total_s")
        cells.append((f"{total:.1f} s" if isinstance(total, (int, float)) else "", False))
        rows.append(cells)
    return header, rows


def failures(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(r["name"], str(r.get("error", "unknown error"))) for r in result_rows(results) if r.get("status", "ok") != "ok"]


def region_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """How each region was calibrated: threshold, rate on held-out latents, self-consistency."""
    header = ["region", "target", "threshold", "held-out rate", "self-consistency"]
    rows = []
    for name, r in results.get("regions", {}).items():
        rows.append([
            name,
            format_number(r.get("target"), rate=True) if r.get("target") is not None else "—",
            format_number(r.get("threshold")),
            format_number(r.get("heldout_rate"), rate=True) if r.get("heldout_rate") is not None else "—",
            format_number(r.get("self_consistency"), rate=True) if r.get("self_consistency") is not None else "—",
        ])
    return header, rows


def notes(results: Mapping[str, Any]) -> list[str]:
    """How to read the numbers."""
    cfg, feats = (results.get("config") or {}), (results.get("features") or {})
    out = [
        "Hit rate always travels with latent recall: a sampler whose points all sit near the centre of the "
        "training latents hits every region yet reaches almost none of the held-out latents, so a high hit "
        "rate with low latent recall means collapse, not quality. Latent coverage (Naeem) cannot show this "
        "in high dimension: there the centre lies inside every held-out k-NN ball, so collapsed points "
        "still score coverage near 100%.",
        f"FID, KID and precision/recall depend on sample counts: compare them only at equal n "
        f"(here n {cfg.get('n', '?')} generated, n_real {feats.get('n_real', '?')}).",
    ]
    if feats and not feats.get("judge", False):
        out.append(
            f"The extractor {feats.get('extractor', '?')} is not a validated judge of image quality: "
            "its image metrics check that the pipeline runs, they do not rank samplers."
        )
    if results.get("status", "complete") != "complete":
        out.append(f"This run is {results.get('status')}: some samplers or metrics may be missing.")
    return out


def figure_links(results: Mapping[str, Any]) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """Run-level figures, and each row's figures (label -> relative path), rows without figures left out."""
    overall = {str(k): str(v) for k, v in (results.get("figures") or {}).items()}
    per_row = [
        (r["name"], {FIGURE_LABELS.get(k, k): str(v) for k, v in r["figures"].items()})
        for r in result_rows(results) if r.get("figures")
    ]
    return overall, per_row


def _cell(text: str) -> str:
    """Safe in a markdown table cell: no raw HTML, no pipes, no line breaks."""
    return " ".join(str(text).split()).replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _url(rel: str) -> str:
    return str(rel).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _link(label: str, rel: str) -> str:
    return f"[{_cell(label)}]({_url(rel)})"


def render_markdown(results: Mapping[str, Any]) -> str:
    """The whole report as markdown."""
    dataset = (results.get("config") or {}).get("dataset") or (results.get("dataset") or {}).get("name", "")
    lines = [f"# aebench results{': ' + _cell(dataset) if dataset else ''}", ""]
    lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in provenance(results)]
    header, rows = metric_table(results)
    lines += ["", "## Metrics", ""]
    cells = [[f"**{_cell(t)}**" if best else _cell(t) for t, best in row] for row in rows]
    lines += _md_table(header, cells, right_from=2)
    lines += ["", "Best sampler value per column in **bold**; ↑ higher is better, ↓ lower is better; "
              "± is the std over seeds, [low, high] a 95% interval; `ref` rows are references, never ranked."]
    failed = failures(results)
    if failed:
        lines += ["", "## Failed", ""]
        lines += [f"- **{_cell(name)}**: {_cell(err)}" for name, err in failed]
    rheader, rrows = region_table(results)
    if rrows:
        lines += ["", "## Regions", ""]
        lines += _md_table(rheader, [[_cell(c) for c in row] for row in rrows])
    lines += ["", "## Notes", ""]
    lines += [f"- {_cell(n)}" for n in notes(results)]
    overall, per_row = figure_links(results)
    if overall or per_row:
        lines += ["", "## Figures", ""]
        lines += [f"![{_cell(k)}]({_url(v)})" for k, v in overall.items()]
        lines += [f"- {_cell(name)}: " + " · ".join(_link(k, v) for k, v in figs.items()) for name, figs in per_row]
    if results.get("validation"):
        from aebench.reports.validation import validation_markdown

        lines += ["", validation_markdown(results).rstrip("\n")]
    return "\n".join(lines) + "\n"


def write_markdown(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write report.md into `out_dir` atomically."""
    return write_text_atomic(Path(out_dir) / REPORT_NAME, render_markdown(results))
