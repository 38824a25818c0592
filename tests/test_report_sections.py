"""One ordered list of report sections: a section added once shows in report.md, report.html and (when it
asks) the terminal, in its place, from one shared form."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aebench.reports import sections
from aebench.reports.blocks import Cell, Item, Items, Paragraph, Table
from aebench.reports.html import render_html
from aebench.reports.markdown import render_markdown
from aebench.reports.terminal import render_results


def _decision(report):
    """A toy 'decision' section: reads the verdict's order from the report's table model."""
    order = report.table.verdict.order
    return [Paragraph(f"Pick {order[0]}." if order else "No pick.", "lead"),
            Items((Item("the first of the verdict's order", lead="why"),)),
            Table((Cell("sampler"), Cell("rank")), tuple((Cell(n), Cell(str(i + 1), best=i == 0))
                                                         for i, n in enumerate(order)), numeric_from=1)]


@pytest.fixture()
def with_decision(monkeypatch):
    monkeypatch.setattr(sections, "SECTIONS", list(sections.SECTIONS))
    sections.add_section(sections.Section("decision", "Decision", _decision, formats=sections.ALL_FORMATS),
                         after="verdict")


def test_one_entry_adds_a_section_to_every_report_in_its_place(toy_run, with_decision, tmp_path):
    doc = toy_run()
    first = judge_first(doc)
    md = render_markdown(doc)
    assert md.index("## Verdict") < md.index("## Decision") < md.index("## Metrics")
    assert f"Pick {first}." in md and "- **why**: the first of the verdict's order" in md
    assert f"| {first} | **1** |" in md
    html = render_html(doc, tmp_path)
    assert html.index("<h2>Verdict</h2>") < html.index("<h2>Decision</h2>") < html.index("<h2>Metrics</h2>")
    assert f'<p class="lead">Pick {first}.</p>' in html and '<td class="num best">1</td>' in html
    buffer = io.StringIO()
    render_results(doc, Console(file=buffer, width=160, color_system=None))
    text = buffer.getvalue()
    assert "Decision" in text and f"Pick {first}." in text and "why: the first of the verdict's order" in text
    assert text.index("Ranked by") < text.index("Decision")  # after the verdict, as listed


def test_sections_are_listed_once_and_in_order(monkeypatch):
    monkeypatch.setattr(sections, "SECTIONS", list(sections.SECTIONS))
    names = [s.name for s in sections.SECTIONS]
    # the judges' agreement (a run with several feature extractors) comes right after the verdict, everywhere
    assert names[:4] == ["provenance", "verdict", "judges", "metrics"] and names[-1] == "validation"
    assert [s.name for s in sections.sections_for("terminal")] == ["verdict", "judges", "samplers", "failed"]
    with pytest.raises(ValueError, match="exists already"):
        sections.add_section(sections.Section("notes", "Notes again", lambda r: []))
    with pytest.raises(ValueError, match="no report section named 'verdic'"):
        sections.add_section(sections.Section("x", "X", lambda r: []), before="verdic")
    sections.add_section(sections.Section("first", "First", lambda r: []), before="provenance")
    assert sections.SECTIONS[0].name == "first"


def test_an_empty_section_leaves_no_heading(toy_run, monkeypatch, tmp_path):
    monkeypatch.setattr(sections, "SECTIONS", list(sections.SECTIONS))
    sections.add_section(sections.Section("gallery", "Gallery", lambda r: []))
    doc = toy_run()
    assert "Gallery" not in render_markdown(doc) and "Gallery" not in render_html(doc, tmp_path)


def judge_first(doc):
    from aebench.verdict.ranking import judge

    return judge(doc).order[0]
