"""report.md: a results file as GitHub-flavoured markdown that fits a CI step summary.

The pieces (provenance, metric table, regions, notes, figure links) are built as plain data here and
rendered twice: as markdown below and as HTML in `aebench.reports.html`, so both say the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from aebench.infra.io import write_text_atomic
from aebench.reports.table import (
    GROUP_TITLES,
    ColumnView,
    ResultsTable,
    build_table,
    format_number,
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
        name = data.get('name', cfg.get('dataset', '?'))
        text = f"{name}: {data.get('n_train', '?')} train / {data.get('n_heldout', '?')} held-out images"
        text += f" of {shape}" if shape else ""
        text += f", fingerprint {str(data['fingerprint'])[:12]}" if data.get("fingerprint") else ""
        if data.get("options"):
            text += ", options " + ", ".join(f"{k}={v}" for k, v in data["options"].items())
        items.append(("data set", text))
        if data.get("citation"):
            items.append(("citation", str(data["citation"])))
    if model:
        text = (f"checksum {str(model.get('checksum', '?'))[:12]}, {architecture_text(model.get('architecture'))}, "
                f"latent dim {model.get('latent_dim', '?')}")
        measured = model.get("reconstruction") or {}
        heldout, baseline = (model.get("heldout_mse"), model.get("baseline_mse")) if model.get("heldout_mse") is not None \
            else (measured.get("heldout_mse"), measured.get("baseline_mse"))
        if heldout is not None:
            text += f", held-out MSE {heldout:.3g}"
            if baseline is not None:
                text += f" (mean image: {baseline:.3g})"
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
        items.append(("regions", f"calibrated to accept {format_number(cfg['target'], unit='rate')} of held-out latents"))
    if env:
        items.append(("software", _version_text(env)))
    when = str(results.get("created") or "?") + (f" to {results['finished']}" if results.get("finished") else "")
    items.append(("run", f"status {results.get('status', '?')}, {when}"))
    return items


def architecture_text(arch: Any) -> str:
    """'conv_ae (channels 8/16/32, norm batch, ...)' from the checkpoint's architecture record."""
    if not isinstance(arch, Mapping):
        return str(arch) if arch else "unknown architecture"
    parts = []
    for key, value in (arch.get("config") or {}).items():
        if key == "latent_dim":
            continue  # shown on its own
        text = "/".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key.replace('_', ' ')} {text}")
    return str(arch.get("name", "?")) + (f" ({', '.join(parts)})" if parts else "")


def summary_table(table: ResultsTable) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of (text, bold) cells: rank, sampler, n, the ranking metrics, time."""
    ranking = [c for c in table.columns if c.status == "ranks"]
    header = ["rank", "sampler", "n", *(c.header for c in ranking), "time"]
    rows = []
    for r in table.rows:
        cells = [(r.rank_text, r.best), (r.name + (" (ref)" if r.is_reference else ""), False), (str(r.n or ""), False)]
        if r.failed:
            cells += [("failed", False)] + [("", False)] * (len(ranking) - 1) if ranking else []
        else:
            cells += [(r.cells[c.key].text("full"), r.cells[c.key].best) for c in ranking]
        cells.append((f"{r.time_s:.1f} s" if r.time_s is not None else "", False))
        rows.append(cells)
    return header, rows


def group_tables(table: ResultsTable, columns: list[ColumnView] | None = None
                 ) -> list[tuple[str, list[ColumnView], list[list[tuple[str, bool]]]]]:
    """Per metric group: its title, its columns and rows of (text, bold) cells (sampler, then metrics)."""
    columns = table.select(informative_only=True) if columns is None else columns
    out = []
    for group, cols in table.groups(columns):
        rows = []
        for r in table.rows:
            cells = [(r.name + (" (ref)" if r.is_reference else ""), False)]
            if r.failed:
                cells += [("failed", False)] + [("", False)] * (len(cols) - 1)
            else:
                cells += [(r.cells[c.key].text("full"), r.cells[c.key].best) for c in cols]
            rows.append(cells)
        out.append((GROUP_TITLES.get(group, group), cols, rows))
    return out


def verdict_items(table: ResultsTable) -> list[str]:
    """The verdict in sentences: what ranks, what is ahead, what is untrusted, diagnostics, set aside."""
    v = table.verdict
    items = []
    if table.top_line():
        items.append(table.top_line())
    for c in table.columns:
        if c.status == "ranks":
            items.append(f"Ranks: {c.label} ({c.reason}).")
    for c in table.columns:
        if c.status == "untrusted":
            items.append(f"Not ranked, untrusted: {c.label}: {c.reason}.")
    by_meaning: dict[str, list[str]] = {}
    for c in table.columns:
        if c.status == "diagnostic":
            by_meaning.setdefault(c.description, []).append(c.label)
    for meaning, labels in by_meaning.items():
        items.append(f"Diagnostic, never ranked: {', '.join(labels)}" + (f": {meaning.rstrip('.')}" if meaning else "") + ".")
    infos = [c.label for c in table.columns if c.status == "info"]
    if infos:
        items.append(f"Information, no better direction: {', '.join(infos)}.")
    flat = table.flat
    if flat:
        items.append("Set aside, the same for every sampler (no information on this run): " + ", ".join(
            f"{c.label} {format_number(c.flat_value, unit=c.unit)}" if c.flat_value is not None else f"{c.label} (no value)"
            for c in flat) + ".")
    if v.uncovered:
        items.append(f"No trusted headline metric detects: {', '.join(v.uncovered)}.")
    items += v.notes
    return items


def failures(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(r["name"], str(r.get("error", "unknown error"))) for r in result_rows(results) if r.get("status", "ok") != "ok"]


def region_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """How each region was calibrated: threshold, rate on held-out latents, self-consistency."""
    header = ["region", "target", "threshold", "held-out rate", "self-consistency"]
    rows = []
    for name, r in results.get("regions", {}).items():
        rows.append([
            name,
            format_number(r.get("target"), unit="rate") if r.get("target") is not None else "—",
            format_number(r.get("threshold")),
            format_number(r.get("heldout_rate"), unit="rate") if r.get("heldout_rate") is not None else "—",
            format_number(r.get("self_consistency"), unit="rate") if r.get("self_consistency") is not None else "—",
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
    from aebench.run.model_check import warning_text

    useless = warning_text((results.get("model") or {}).get("reconstruction"))
    if useless:
        out.insert(0, f"Warning: {useless}")
    stop = results.get("interrupted") or {}
    if results.get("status") == "interrupted":
        out.append(f"This run was interrupted ({stop.get('reason', '?')}, {stop.get('at', '?')}): only the cells it "
                   "finished are here; run the same command with --resume to finish it.")
    elif results.get("status", "complete") != "complete":
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


def _bold_cells(row: list[tuple[str, bool]]) -> list[str]:
    return [f"**{_cell(t)}**" if bold and t else _cell(t) for t, bold in row]


def render_markdown(results: Mapping[str, Any]) -> str:
    """The whole report as markdown."""
    table = build_table(results)
    dataset = (results.get("config") or {}).get("dataset") or (results.get("dataset") or {}).get("name", "")
    lines = [f"# aebench results{': ' + _cell(dataset) if dataset else ''}", ""]
    lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in provenance(results)]
    lines += ["", "## Verdict", "", _cell(table.verdict.basis), ""]
    header, rows = summary_table(table)
    lines += _md_table(header, [_bold_cells(r) for r in rows], right_from=2)
    lines += [""] + [f"- {_cell(item)}" for item in verdict_items(table)]
    lines += ["", "## Metrics", ""]
    for title, cols, rows in group_tables(table):
        lines += [f"### {_cell(title)}", ""]
        lines += _md_table(["sampler", *(c.header for c in cols)], [_bold_cells(r) for r in rows])
        lines.append("")
    lines += ["Bold: ahead on a metric that ranks (intervals apart from the rows behind). ↑ higher is better, "
              "↓ lower is better; ± is the std over seeds, [low, high] a 95% interval; `(ref)` rows are "
              "references, never ranked."]
    if table.variants:
        lines += ["", "## Samplers", ""]
        lines += _md_table(["label", "sampler and options"], [[_cell(n), _cell(v)] for n, v in table.variants], right_from=2)
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
