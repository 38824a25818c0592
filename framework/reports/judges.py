"""The report section of a run with several feature extractors ("judges", `--features inception,domain`):
who the judges are, and whether they rank the samplers alike on each image headline metric (the rank
correlation and the samplers they put in opposite orders, from `aebench.verdict.agreement`). Where they
disagree the section says so in one sentence per metric and picks neither order."""

from __future__ import annotations

from typing import Any, Mapping

from aebench.infra.numbers import format_number
from aebench.reports import blocks as b
from aebench.verdict.agreement import agreement

TITLE = "Judges: do the feature spaces agree?"


def judge_text(record: Mapping[str, Any], first: bool) -> str:
    """'domain (keys ending in @domain; validated judge; held-out accuracy 100.0%, 40 classes)'."""
    prov = record.get("provenance") or {}
    parts = ["the metrics' own keys" if first else f"keys ending in {record.get('suffix', '')}"]
    parts.append("validated judge" if record.get("judge") else "NOT a validated judge")
    if isinstance(prov.get("heldout_accuracy"), (int, float)):
        parts.append(f"held-out accuracy {format_number(prov['heldout_accuracy'], unit='rate')}"
                     + (f", {prov['num_classes']} classes" if prov.get("num_classes") else ""))
    return f"{record.get('extractor', '?')} ({'; '.join(parts)})"


def judges_blocks(results: Mapping[str, Any]) -> list[b.Block]:
    section = results.get("judges") or {}
    records = section.get("extractors") or []
    if len(records) < 2:
        return []
    found = agreement(results)
    out: list[b.Block] = [b.Paragraph("Image metrics scored by " + ", ".join(
        judge_text(r, i == 0) for i, r in enumerate(records)) + ".")]
    if not found:
        out.append(b.Paragraph("No image headline metric was scored by two judges on finished samplers yet.", "dim"))
        return out
    rows = []
    for a in found:
        pairs = "; ".join(f"{d['ahead_first']} ≻ {d['ahead_second']} vs {d['ahead_second']} ≻ {d['ahead_first']}"
                          for d in a.disagreements) or "none"
        rows.append(b.cells([a.label, f"{a.judges[0]} / {a.judges[1]}", str(a.n),
                             f"{a.spearman:.2f}" if a.spearman is not None else "–"])
                    + (b.Cell(pairs, style="warning" if a.disagreements else ""),))
    out.append(b.Table(b.cells(["metric", "judges", "samplers", "Spearman ρ", "opposite orders"]),
                       tuple(rows), numeric_from=2, numeric_to=4))
    disagree = [a for a in found if a.disagreements]
    if disagree:
        out.append(b.Items(tuple(b.Item(a.sentence, style="warning") for a in disagree)))
    else:
        out.append(b.Paragraph("The judges never put two samplers in opposite orders with intervals apart: "
                               + " ".join(a.sentence for a in found), "good"))
    out.append(b.Paragraph("ρ: Spearman rank correlation of the two judges' values over the samplers (1: the same "
                           "order). A pair in opposite orders is one judge's clear winner and the other's clear "
                           "loser; the verdict ranks by both judges' keys, so neither is ahead of the other "
                           "overall on their account.", "caption"))
    return out
