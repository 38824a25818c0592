"""The report's sections, in order: one list (`SECTIONS`) that report.md, report.html and the terminal all
walk, so a new section is one entry here.

A `Section` has a name, a title (its heading in report.md and report.html) and a `blocks` function that
builds its content once, in the shared form of `aebench.reports.blocks` (paragraphs, lists, tables,
label: value pairs, figures), from a `Report` (the results document, the verdict's table model built
once, which output is being written). `formats` says where it appears (report.md and report.html by
default; the terminal too when it lists "terminal"). A section that needs a format's own means (the
terminal's width-fitting results table, say) gives `markdown`, `html` or `terminal` functions that
replace the blocks for that format. Nothing here computes a number: sections read the document, the
column declarations and the verdict (`aebench.reports.table`).

    from aebench.reports.sections import Section, add_section
    from aebench.reports.blocks import Paragraph

    add_section(Section("decision", "Decision", lambda report: [Paragraph("...")],
                        formats=ALL_FORMATS), after="verdict")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from rich.console import RenderableType
from rich.text import Text

from aebench.infra.numbers import format_number
from aebench.reports import blocks as b
from aebench.reports.copies import copies_blocks
from aebench.reports.explorer import TITLE as EXPLORER_TITLE
from aebench.reports.explorer import explorer_html
from aebench.reports.layout import results_renderables
from aebench.reports.table import GROUP_TITLES, ColumnView, ResultsTable, build_table, result_rows
from aebench.reports.validation import validation_blocks
from aebench.results.reconstruction import warning_text

Format = Literal["markdown", "html", "terminal"]
ALL_FORMATS: frozenset[str] = frozenset({"markdown", "html", "terminal"})
REPORT_FORMATS: frozenset[str] = frozenset({"markdown", "html"})
FIGURE_LABELS = {"grid": "samples", "strips": "paths", "scatter": "latent scatter", "along_t": "hits along t"}


@dataclass
class Report:
    """What a section reads: the results document, the output being written, the verdict's table model
    (built once per report), and for the terminal the metric columns asked for."""

    results: Mapping[str, Any]
    format: Format
    out_dir: Path = Path(".")  # report.html reads figures from here
    metrics: Sequence[str] | None = None  # the terminal's `--metric` choice (None: headline and diagnostic)
    console: Any = None  # the terminal's rich Console (its width decides the table layout)
    layout: str = ""  # the terminal layout the results table took (set by the verdict section)
    _table: ResultsTable | None = field(default=None, repr=False)

    @property
    def table(self) -> ResultsTable:
        if self._table is None:
            self._table = build_table(self.results, self.metrics if self.format == "terminal" else None)
        return self._table

    @property
    def dataset(self) -> str:
        return str((self.results.get("config") or {}).get("dataset")
                   or (self.results.get("dataset") or {}).get("name", "") or "")


@dataclass(frozen=True)
class Section:
    """One part of the report; see the module docstring."""

    name: str
    title: str  # heading in report.md / report.html ('' for none)
    blocks: Callable[[Report], Sequence[b.Block]]  # nothing to show: []
    formats: frozenset[str] = REPORT_FORMATS
    markdown: Callable[[Report], list[str]] | None = None  # replaces the blocks in report.md
    html: Callable[[Report], list[str]] | None = None  # replaces the blocks in report.html
    terminal: Callable[[Report], list[RenderableType]] | None = None  # replaces the blocks in the terminal


def _content(section: Section, report: Report) -> list[b.Block]:
    content = list(section.blocks(report))
    if content and section.title:
        content.insert(0, b.Heading(section.title))
    return content


def render_markdown_sections(report: Report) -> list[str]:
    lines: list[str] = []
    for section in sections_for("markdown"):
        lines += section.markdown(report) if section.markdown else b.markdown(_content(section, report))
    return lines


def render_html_sections(report: Report) -> list[str]:
    parts: list[str] = []
    for section in sections_for("html"):
        parts += section.html(report) if section.html else b.html(_content(section, report), report.out_dir)
    return parts


def render_terminal_sections(report: Report) -> list[RenderableType]:
    out: list[RenderableType] = []
    for section in sections_for("terminal"):
        out += section.terminal(report) if section.terminal else b.terminal(_content(section, report))
    return out


# ------------------------------------------------------------------------------------------ provenance

def _version_text(env: Mapping[str, Any]) -> str:
    parts = [f"{k} {env[k]}" for k in ("aebench", "torch", "python") if env.get(k)]
    if env.get("platform"):
        parts.append(str(env["platform"]))
    device = env.get("device") or "?"
    if env.get("gpu"):
        device += f" ({env['gpu']})"
    return ", ".join(parts) + f"; device {device}"


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
        for record in ((results.get("judges") or {}).get("extractors") or [])[1:]:  # `--features a,b`
            accuracy = (record.get("provenance") or {}).get("heldout_accuracy")
            text = (f"{record.get('extractor', '?')} ({record.get('identity', '?')}); keys ending in {record.get('suffix', '')}; "
                    f"validated judge: {'yes' if record.get('judge') else 'no'}")
            text += f"; held-out accuracy {format_number(accuracy, unit='rate')}" if accuracy is not None else ""
            items.append(("also judged by", text))
    seeds = cfg.get("seeds")
    latent = f" ({cfg['n_latent']} latent points for the latent-space metrics, the first n decoded)" if cfg.get("n_latent") else ""
    items.append(("samples", f"n {cfg.get('n', '?')} decoded per sampler and seed{latent}; "
                             f"seeds {', '.join(map(str, seeds)) if seeds else '?'}"))
    if cfg.get("target") is not None:
        items.append(("regions", f"calibrated to accept {format_number(cfg['target'], unit='rate')} of held-out latents"))
    if env:
        items.append(("software", _version_text(env)))
    when = str(results.get("created") or "?") + (f" to {results['finished']}" if results.get("finished") else "")
    items.append(("run", f"status {results.get('status', '?')}, {when}"))
    return items


def _provenance_blocks(report: Report) -> list[b.Block]:
    title = "aebench results" + (f": {report.dataset}" if report.dataset else "")
    return [b.Heading(title, 1), b.Pairs(tuple(provenance(report.results)))]


# --------------------------------------------------------------------------------------------- verdict

def _metric_cells(table: ResultsTable, columns: Sequence[ColumnView], row: Any, failed_style: str) -> list[b.Cell]:
    """A row's cells for `columns`: 'failed' in the first when the row failed."""
    if row.failed:
        return [b.Cell("failed", style=failed_style)] + [b.Cell("")] * (len(columns) - 1) if columns else []
    return [b.Cell(row.cells[c.key].text("full"), best=row.cells[c.key].best, style=_column_style(c))
            for c in columns]


def _column_style(column: ColumnView) -> str:
    return {"flat": "flat", "untrusted": "untrusted", "diagnostic": "diagnostic"}.get(column.status, "")


def summary_table(table: ResultsTable) -> b.Table:
    """Rank, sampler, n, the ranking metrics, time: one row per reference and sampler."""
    ranking = [c for c in table.columns if c.status == "ranks"]
    header = b.cells(["rank", "sampler", "n", *(c.header for c in ranking), "time"])
    rows = []
    for r in table.rows:
        cells = [b.Cell(r.rank_text, best=r.best), b.Cell(r.name + (" (ref)" if r.is_reference else "")),
                 b.Cell(str(r.n or ""))]
        cells += _metric_cells(table, ranking, r, "failed")
        cells.append(b.Cell(f"{r.time_s:.1f} s" if r.time_s is not None else ""))
        rows.append(tuple(cells))
    return b.Table(header, tuple(rows), numeric_from=2, row_styles=_row_styles(table))


def _row_styles(table: ResultsTable) -> tuple[str, ...]:
    return tuple("ref" if r.is_reference else "" for r in table.rows)


def verdict_items(table: ResultsTable) -> list[str]:
    """The verdict in sentences: what ranks, what is ahead, what is untrusted, diagnostics, set aside."""
    v = table.verdict
    items = []
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


def _verdict_blocks(report: Report) -> list[b.Block]:
    table = report.table
    decision = [b.Paragraph(text, style) for text, style in ((table.top_line(), "good"), (table.race_line(), ""))
                if text]
    return [b.Paragraph(table.verdict.basis, "lead"), *decision, summary_table(table),
            b.Items(tuple(b.Item(text) for text in verdict_items(table)))]


def _verdict_terminal(report: Report) -> list[RenderableType]:
    report.layout, parts = results_renderables(report.table, report.console, report.metrics)
    return parts


# --------------------------------------------------------------------------------------------- metrics

MARKDOWN_LEGEND = ("Bold: ahead on a metric that ranks (intervals apart from the rows behind). ↑ higher is better, "
                   "↓ lower is better; ± is the std over seeds, [low, high] a 95% interval; `(ref)` rows are "
                   "references, never ranked.")
HTML_LEGEND = ("Green: ahead on a metric that ranks (intervals apart from the rows behind); italic grey: untrusted "
               "here; light grey: the same value for every sampler. ↑ higher is better, ↓ lower is better; ± is the "
               "std over seeds, [low, high] a 95% interval; grey rows are references, never ranked.")


def group_tables(table: ResultsTable, columns: list[ColumnView] | None = None) -> list[tuple[str, b.Table]]:
    """Per metric group: its title and a table (sampler, then the group's metrics)."""
    columns = table.select(informative_only=True) if columns is None else columns
    out = []
    for group, cols in table.groups(columns):
        header = (b.Cell("sampler"), *(b.Cell(c.header, style=_column_style(c), title=c.reason) for c in cols))
        rows = tuple((b.Cell(r.name + (" (ref)" if r.is_reference else "")), *_metric_cells(table, cols, r, "failed"))
                     for r in table.rows)
        out.append((GROUP_TITLES.get(group, group), b.Table(header, rows, numeric_from=1, row_styles=_row_styles(table))))
    return out


def _metrics_blocks(report: Report) -> list[b.Block]:
    table = report.table
    # report.html shows every column, set-aside ones greyed (their header says why); report.md the informative ones
    columns = table.select() if report.format == "html" else None
    out: list[b.Block] = []
    for title, group in group_tables(table, columns):
        out += [b.Heading(title, 3), group]
    legend = HTML_LEGEND if report.format == "html" else MARKDOWN_LEGEND
    return out + [b.Paragraph(legend, "caption")]


# ------------------------------------------------------------------------------- samplers, failures, ...

def _samplers_blocks(report: Report) -> list[b.Block]:
    variants = report.table.variants
    if not variants:
        return []
    return [b.Table(b.cells(["label", "sampler and options"]), tuple(b.cells(v) for v in variants), numeric_from=2)]


def _samplers_terminal(report: Report) -> list[RenderableType]:
    return [Text(f"{name} = {variant}") for name, variant in report.table.variants]


def failures(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(r["name"], str(r.get("error", "unknown error"))) for r in result_rows(results) if r.get("status", "ok") != "ok"]


def _failed_blocks(report: Report) -> list[b.Block]:
    failed = failures(report.results)
    return [b.Items(tuple(b.Item(err, lead=name, style="failed") for name, err in failed))] if failed else []


def _failed_terminal(report: Report) -> list[RenderableType]:
    return [Text(f"Failed: {row.name}: {row.error}", style="red") for row in report.table.failed]


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


def _regions_blocks(report: Report) -> list[b.Block]:
    header, rows = region_table(report.results)
    return [b.Table(b.cells(header), tuple(b.cells(r) for r in rows))] if rows else []


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


def _notes_blocks(report: Report) -> list[b.Block]:
    return [b.Items(tuple(b.Item(n) for n in notes(report.results)))]


def figure_links(results: Mapping[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Each row's figures (label -> path relative to the output folder), rows without figures left out."""
    return [(r["name"], {FIGURE_LABELS.get(k, k): str(v) for k, v in r["figures"].items()})
            for r in result_rows(results) if r.get("figures")]


def _figures_blocks(report: Report) -> list[b.Block]:
    return [b.Figures(tuple(figs.items()), heading=name) for name, figs in figure_links(report.results)]


def _copies_blocks(report: Report) -> list[b.Block]:
    return copies_blocks(report.results)


def _explorer_html(report: Report) -> list[str]:
    return explorer_html(report.results, report.out_dir)


def _explorer_markdown(report: Report) -> list[str]:
    """report.md cannot run the explorer: one line says where it is."""
    if not report.results.get("explorer"):
        return []
    return [f"## {EXPLORER_TITLE}", "", b.md_text(
        "Interactive in report.html: images decoded across planes of the leading principal axes or the dominant "
        "components, with the training latents and each sampler's points; its data is in "
        f"{report.results['explorer']} and figures/explorer/."), ""]


def _validation_blocks(report: Report) -> list[b.Block]:
    return validation_blocks(report.results)


def _judges_blocks(report: Report) -> list[b.Block]:
    from aebench.reports.judges import judges_blocks

    return judges_blocks(report.results)


# ------------------------------------------------------------------------------------------- the order

SECTIONS: list[Section] = [
    Section("provenance", "", _provenance_blocks),
    Section("verdict", "Verdict", _verdict_blocks, formats=ALL_FORMATS, terminal=_verdict_terminal),
    Section("judges", "Judges: do the feature spaces agree?", _judges_blocks, formats=ALL_FORMATS),
    Section("metrics", "Metrics", _metrics_blocks),
    Section("copies", "Memorisation: the copies behind latent copies", _copies_blocks),
    Section("samplers", "Samplers", _samplers_blocks, formats=ALL_FORMATS, terminal=_samplers_terminal),
    Section("failed", "Failed", _failed_blocks, formats=ALL_FORMATS, terminal=_failed_terminal),
    Section("regions", "Regions", _regions_blocks),
    Section("notes", "Notes", _notes_blocks),
    Section("explorer", EXPLORER_TITLE, lambda report: [], html=_explorer_html, markdown=_explorer_markdown),
    Section("figures", "Figures", _figures_blocks),
    Section("validation", "Validation: known-answer ladders", _validation_blocks),
]


def sections_for(fmt: Format) -> list[Section]:
    """The sections that appear in `fmt`, in order."""
    return [s for s in SECTIONS if fmt in s.formats]


def add_section(section: Section, *, after: str | None = None, before: str | None = None) -> None:
    """Insert `section` after (or before) the section named so, or at the end; a name is used once."""
    names = [s.name for s in SECTIONS]
    if section.name in names:
        raise ValueError(f"a report section named {section.name!r} exists already")
    anchor = after or before
    if anchor is None:
        SECTIONS.append(section)
        return
    if anchor not in names:
        raise ValueError(f"no report section named {anchor!r}; sections: {', '.join(names)}")
    SECTIONS.insert(names.index(anchor) + (1 if after else 0), section)


__all__ = ["ALL_FORMATS", "REPORT_FORMATS", "Report", "SECTIONS", "Section", "add_section", "architecture_text",
           "failures", "figure_links", "group_tables", "notes", "provenance", "region_table", "render_html_sections",
           "render_markdown_sections", "render_terminal_sections", "sections_for", "summary_table", "verdict_items"]
