"""The `validation` section of a results document (`aebench validate`, `aebench run --validate`) as a
terminal table, markdown and HTML: for each metric key and ladder, the rank correlation of its badness
with the degradation step and the verdict; which metrics are trusted for what; and which ladders no
trusted headline metric detects.

The pieces are built as plain data here (`verdict_table`, `summary`): `aebench validate` prints them as a
table (`render_validation_table`), and the reports' "validation" section (`aebench.reports.sections`)
renders them as blocks (`validation_blocks`), so the terminal, report.md and report.html say the same.
"""

from __future__ import annotations

from typing import Any, Mapping

from aebench.reports.blocks import Block, Cell, Figures, Item, Items, Paragraph, Table, cells

MARK = {"holds": "✓", "broken": "✗", "flat": "~", "untested": "?"}
SHORT = {"collapse": "collapse", "spread": "spread", "contamination": "contam", "mode_drop": "modes",
         "moments": "moments", "memorisation": "memo"}
ROLE_ORDER = {"headline": 0, "diagnostic": 1, "info": 2}
LEGEND = ("ρ = Spearman rank correlation of the metric's badness with the degradation step; "
          "✓ holds (ρ ≥ {holds}), ✗ broken, ~ flat (barely moves), ? untested. Bold: ladders the metric "
          "claims to detect; only those decide its verdict.")


def section(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    v = doc.get("validation")
    return v if isinstance(v, Mapping) and v.get("metrics") is not None else None


def shown_keys(validation: Mapping[str, Any]) -> list[str]:
    """Metric keys with a direction (informational ones have nothing to validate): headline first."""
    metrics = validation.get("metrics", {})
    keys = [k for k, e in metrics.items() if e.get("higher_is_better") is not None]
    return sorted(keys, key=lambda k: ROLE_ORDER.get(metrics[k].get("role") or "", 3))


def cell(entry: Mapping[str, Any] | None) -> str:
    """One ladder of one key: '0.97✓', '-0.31✗', '~' (flat), '?' (untested)."""
    if not entry:
        return "?"
    verdict = entry.get("verdict", "untested")
    rho = entry.get("spearman")
    if verdict in ("untested",) or rho is None:
        return MARK.get(verdict, "?")
    return f"{rho:.2f}{MARK.get(verdict, '?')}"


def verdict_table(validation: Mapping[str, Any]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of (text, claimed) cells: key, role, one cell per ladder, overall verdict."""
    ladders = list(validation.get("ladders", {}))
    header = ["metric", "role", *(SHORT.get(name, name) for name in ladders), "verdict"]
    rows = []
    for key in shown_keys(validation):
        entry = validation["metrics"][key]
        claimed = set(entry.get("detects", []))
        cells = [(key, False), (entry.get("role") or "", False)]
        cells += [(cell(entry.get("ladders", {}).get(name)), name in claimed) for name in ladders]
        cells.append((entry.get("verdict", "untested"), False))
        rows.append(cells)
    return header, rows


def summary(validation: Mapping[str, Any]) -> list[str]:
    """Plain sentences: what was run, which headline metrics are trusted for what, which are not and
    why, and which ladders nothing trusted detects."""
    settings = validation.get("settings", {})
    metrics = validation.get("metrics", {})
    ladders = list(validation.get("ladders", {}))
    steps = settings.get("steps", {})
    step_text = ", ".join(sorted({str(v) for v in steps.values()})) if isinstance(steps, Mapping) else str(steps)
    lines = [
        f"{len(ladders)} ladders of {step_text} steps from {settings.get('base', '?')}; latent reference: "
        f"{settings.get('latent_reference', '?')}; image features: {settings.get('extractor') or 'none'}."
    ]
    if settings.get("extractor") and settings.get("extractor_judge") is False:
        lines.append(f"The extractor {settings['extractor']} is not a validated judge: its image-metric verdicts "
                     "check the pipeline, they do not vouch for the metrics; validate with inception.")
    trusted, untrusted = [], []
    for key, entry in metrics.items():
        if entry.get("role") != "headline":
            continue
        if entry.get("verdict") == "holds":
            trusted.append(f"{key} ({', '.join(entry.get('trusted_for', [])) or '—'})")
        else:
            bad = [f"{name} {entry['ladders'][name].get('verdict')}"
                   + (f" ρ={entry['ladders'][name]['spearman']:.2f}" if entry["ladders"][name].get("spearman") is not None else "")
                   for name in entry.get("detects", []) if name in entry.get("ladders", {})
                   and entry["ladders"][name].get("verdict") != "holds"]
            reason = "; ".join(bad) or entry.get("note") or "claims no ladder that was run"
            untrusted.append(f"{key} ({entry.get('verdict')}: {reason})")
    lines.append("Trusted headline metrics: " + ("; ".join(trusted) if trusted else "none") + ".")
    if untrusted:
        lines.append("Headline metrics NOT trusted on this model: " + "; ".join(untrusted) + ".")
    missing = validation.get("uncovered", [])
    lines.append("Every ladder is detected by a trusted headline metric." if not missing else
                 "Ladders no trusted headline metric detects: " + ", ".join(missing) + ".")
    timing = settings.get("timing_s", {})
    if timing.get("total_s") is not None:
        feats = settings.get("features") or {}
        lines.append(f"Validation took {timing['total_s']:.0f} s ({settings.get('images_decoded', 0)} images decoded; "
                     f"features computed for {feats.get('computed', 0)}, reused for {feats.get('reused', 0)}, "
                     f"cached for {feats.get('cached', 0)}).")
    return lines


def ladder_rows(validation: Mapping[str, Any]) -> list[list[str]]:
    """One row per ladder: name, what the level means, the levels."""
    return [[name, str(spec.get("param", "")), ", ".join(f"{x:g}" for x in spec.get("levels", []))]
            for name, spec in validation.get("ladders", {}).items()]


# ---------------------------------------------------------------------------- terminal
def render_validation_table(validation: Mapping[str, Any], console: Any) -> None:
    """The metric x ladder table and the summary, readable at 80 columns: headline metrics first, then
    a rule, then diagnostics."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    header, rows = verdict_table(validation)
    settings = validation.get("settings", {})
    table = Table(title=Text("aebench validate: do the metrics see known degradations?", style="bold"),
                  box=box.HORIZONTALS, pad_edge=False, collapse_padding=True,
                  caption=Text(LEGEND.format(holds=settings.get("holds_at", 0.9))
                               + " Headline metrics first, diagnostics after the rule.", style="dim"))
    table.add_column(header[0], overflow="fold", max_width=22)
    for name in header[2:-1]:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column(header[-1], no_wrap=True)
    for i, row in enumerate(rows):
        styled = [Text(row[0][0])]
        for text, claimed in row[2:-1]:
            style = ("bold green" if text.endswith(MARK["holds"]) else "bold red") if claimed else "dim"
            styled.append(Text(text, style=style))
        verdict = row[-1][0]
        styled.append(Text(verdict, style={"holds": "green", "broken": "red", "flat": "yellow"}.get(verdict, "dim")))
        next_role = rows[i + 1][1][0] if i + 1 < len(rows) else None
        table.add_row(*styled, end_section=row[1][0] == "headline" and next_role not in (None, "headline"))
    console.print(table)
    for line in summary(validation):
        console.print(Text(line))


# ------------------------------------------------------------------------- report.md and report.html
FIGURE_CAPTION = ("Change in each metric's badness from step 0, scaled to its largest change (up = worse): a "
                  "trusted metric climbs at every step of the ladders it claims.")


def validation_blocks(doc: Mapping[str, Any]) -> list[Block]:
    """The report section's content (none when the document has no validation): the summary, the ladders,
    the metric x ladder table (claimed ladders in bold: green where they hold, red where not), the legend,
    the plot."""
    validation = section(doc)
    if validation is None:
        return []
    settings = validation.get("settings", {})
    out: list[Block] = [Items(tuple(Item(line) for line in summary(validation)))]
    out.append(Table(cells(["ladder", "level", "levels"]), tuple(cells(row) for row in ladder_rows(validation)),
                     numeric_from=3))
    header, rows = verdict_table(validation)
    body = []
    for row in rows:
        ladder_cells = [Cell(text, strong=claimed, style=("best" if text.endswith(MARK["holds"]) else "failed")
                             if claimed else "") for text, claimed in row[2:-1]]
        verdict = row[-1][0]
        body.append((Cell(row[0][0]), Cell(row[1][0]), *ladder_cells,
                     Cell(verdict, style={"holds": "best", "broken": "failed"}.get(verdict, ""))))
    out.append(Table(cells(header), tuple(body), numeric_from=2, numeric_to=len(header) - 1))
    out.append(Paragraph(LEGEND.format(holds=settings.get("holds_at", 0.9)), "caption"))
    if validation.get("figure"):
        out.append(Figures((("metric values along each ladder", str(validation["figure"])),), inline=False,
                           caption=FIGURE_CAPTION))
    return out
