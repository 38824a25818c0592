"""The memorisation gallery section: for every sampler whose memorisation metric is above 0, its most
copied samples (decoded) beside the training image whose latent is nearest, with each copy's score
against the threshold, so "latent copies 23.6%" comes with the faces that were copied.

Reads the rows' `copies` records (written from the metric's own `copy_evidence`, see
`aebench.run.pictures`) and their gallery figures; computes nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

from aebench.infra.numbers import format_number
from aebench.reports.blocks import Block, Cell, Figures, Heading, Paragraph, Table, cells

LEAD = ("Samplers with copies beyond chance, first seed: the most copied samples (decoded, top row), the "
        "decoder's image of the nearest training latent, and that training image. A sample is a copy when its "
        "score is below the threshold; lower is more of a copy.")


def metric_text(results: Mapping[str, Any], row: Mapping[str, Any], metric: str) -> str:
    """'latent copies 23.9%' for the keys `metric` produced on this row (its value over all seeds)."""
    info = results.get("metric_info") or {}
    parts = []
    for key, entry in (row.get("metrics") or {}).items():
        declared = info.get(key) or {}
        if declared.get("metric") == metric and entry.get("value") is not None:
            parts.append(f"{declared.get('label', key)} {format_number(entry['value'], unit=declared.get('unit', ''))}")
    return ", ".join(parts)


def copies_blocks(results: Mapping[str, Any]) -> list[Block]:
    """The section's content: nothing when no sampler has copies."""
    rows = [r for r in results.get("samplers", []) if r.get("copies")]
    if not rows:
        return []
    out: list[Block] = [Paragraph(LEAD, "caption")]
    for row in rows:
        c = row["copies"]
        seed = (row.get("seeds") or ["?"])[0]
        value = metric_text(results, row, str(c.get("metric", "")))
        out.append(Heading(str(row["name"]), 3))
        out.append(Paragraph(
            f"{value + ': ' if value else ''}{c['copied']} of {c['n']} samples of seed {seed} are copies. "
            f"Score: {c['statistic']}; a sample is a copy when {c['rule']}."))
        if c.get("figure"):
            out.append(Figures(((f"{row['name']}: the most copied samples", str(c["figure"])),), inline=False))
        shown = c.get("shown") or []
        same = all(abs(s["score"] - s["train_distance"]) <= 1e-12 * max(1.0, abs(s["score"])) for s in shown)
        header = ["sample", "nearest training latent", "score", "threshold"] + ([] if same else ["distance to it"])
        body = []
        for s in shown:
            texts = [f"#{s['sample']}", f"#{s['train']}", f"{s['score']:.4g}", f"{c['threshold']:.4g}"]
            body.append(tuple(cells(texts + ([] if same else [f"{s['train_distance']:.4g}"]))))
        if body:
            out.append(Table(tuple(Cell(h) for h in header), tuple(body), numeric_from=2))
    return out
