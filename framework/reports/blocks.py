"""The shared form of a report section: a few kinds of block (a heading, a paragraph, a list, a table, label:
value pairs, figures) and their three renderings, as markdown (report.md), HTML (report.html) and rich
renderables (the terminal). A section builds blocks once (see `aebench.reports.sections`) and every report
shows the same content; a section only writes format-specific code where a format needs something the
blocks cannot say.

Markdown is safe in a CI summary (no raw HTML, no pipes or line breaks inside table cells); HTML escapes
every text and embeds figures as data URIs, so report.html is one self-contained file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Sequence, Union

from rich import box
from rich.console import RenderableType
from rich.padding import Padding
from rich.table import Table as RichTable
from rich.text import Text as RichText

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# how a paragraph's or cell's style reads in the terminal (HTML uses it as a CSS class; markdown ignores it)
TERMINAL_STYLE = {"lead": "bold", "caption": "dim", "good": "green", "warning": "yellow", "failed": "red",
                  "dim": "dim", "best": "bold green"}


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2  # 1: the report's title; 2: a section; 3: a part of one


@dataclass(frozen=True)
class Paragraph:
    text: str
    style: str = ""  # 'lead' (the sentence that matters), 'caption', 'good', 'warning', 'failed', 'dim'


@dataclass(frozen=True)
class Item:
    """A list item: `text`, optionally led by a bold `lead` ('**lead**: text')."""

    text: str
    lead: str = ""
    style: str = ""  # applies to `text`


@dataclass(frozen=True)
class Items:
    items: tuple[Item, ...]
    indent: bool = False  # the terminal indents them (a list under the line before)


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False  # ahead on a ranking metric: bold in markdown, 'best' (green, bold) in HTML and terminal
    strong: bool = False  # emphasised without being best: bold everywhere
    style: str = ""  # extra CSS classes / terminal style: 'flat', 'untrusted', 'diagnostic', 'failed', ...
    title: str = ""  # HTML tooltip (a header's reason)


@dataclass(frozen=True)
class Table:
    header: tuple[Cell, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric_from: int = 1  # columns from this index on are numbers: right-aligned ...
    numeric_to: int | None = None  # ... up to (not including) this one
    row_styles: tuple[str, ...] = ()  # per row: 'ref' (a reference row, greyed) or ''

    def numeric(self, column: int) -> bool:
        return self.numeric_from <= column and (self.numeric_to is None or column < self.numeric_to)


@dataclass(frozen=True)
class Pairs:
    """Label: value lines (the provenance)."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Figures:
    """Figures under an optional subheading: (label, path relative to the output folder). In markdown they
    are links on one line (`inline`) or images; in HTML they are embedded."""

    figures: tuple[tuple[str, str], ...]
    heading: str = ""
    inline: bool = True
    caption: str = ""  # one caption for an image figure (HTML)


Block = Union[Heading, Paragraph, Items, Table, Pairs, Figures]


def cells(texts: Sequence[str], **kwargs: object) -> tuple[Cell, ...]:
    """Plain cells from texts (all with the same flags)."""
    return tuple(Cell(str(t), **kwargs) for t in texts)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- markdown

def md_text(text: object) -> str:
    """Safe in markdown and in a table cell: no raw HTML, no pipes, no line breaks."""
    return " ".join(str(text).split()).replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def md_url(rel: str) -> str:
    return str(rel).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1,
             right_to: int | None = None) -> list[str]:
    """Lines of a markdown table, columns [right_from, right_to) right-aligned; `header` is escaped here,
    `rows` must be escaped already."""
    align = ["---:" if right_from <= i and (right_to is None or i < right_to) else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(md_text(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _md_cell(cell: Cell) -> str:
    text = md_text(cell.text)
    return f"**{text}**" if (cell.best or cell.strong) and text else text


def markdown(blocks: Sequence[Block]) -> list[str]:
    """The blocks as markdown lines, a blank line after each block."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines.append("#" * block.level + " " + md_text(block.text))
        elif isinstance(block, Paragraph):
            lines.append(md_text(block.text))
        elif isinstance(block, Items):
            lines += [f"- **{md_text(i.lead)}**: {md_text(i.text)}" if i.lead else f"- {md_text(i.text)}"
                      for i in block.items]
        elif isinstance(block, Pairs):
            lines += [f"- **{md_text(k)}**: {md_text(v)}" for k, v in block.items]
        elif isinstance(block, Table):
            lines += md_table([c.text for c in block.header], [[_md_cell(c) for c in row] for row in block.rows],
                              right_from=block.numeric_from, right_to=block.numeric_to)
        elif isinstance(block, Figures):
            if block.heading:
                lines.append(f"- {md_text(block.heading)}: " + " · ".join(
                    f"[{md_text(label)}]({md_url(path)})" for label, path in block.figures))
            elif block.inline:
                lines.append(" · ".join(f"[{md_text(label)}]({md_url(path)})" for label, path in block.figures))
            else:
                lines += [f"![{md_text(label)}]({md_url(path)})" for label, path in block.figures]
        lines.append("")
    return lines


# ----------------------------------------------------------------------------------------------- HTML

def embed_png(out_dir: Path, rel: str) -> str | None:
    """A figure file as a data URI, or None when it is missing or not a PNG."""
    try:
        data = (out_dir / rel).read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _html_figure(out_dir: Path, label: str, rel: str, caption: str = "") -> str:
    uri = embed_png(out_dir, rel)
    if uri is None:
        return f'<figure><figcaption>{escape(label)}: figure missing ({escape(rel)})</figcaption></figure>'
    return (f'<figure><img src="{uri}" alt="{escape(label)}"><figcaption>{escape(caption or label)}</figcaption>'
            f"</figure>")


def _html_cell(cell: Cell, tag: str, numeric: bool) -> str:
    classes = " ".join(c for c in ("num" if numeric else "", cell.style, "best" if cell.best else "") if c)
    attrs = (f' class="{classes}"' if classes else "") + (f' title="{escape(cell.title)}"' if cell.title else "")
    text = f"<strong>{escape(cell.text)}</strong>" if cell.strong else escape(cell.text)
    return f"<{tag}{attrs}>{text}</{tag}>"


def html(blocks: Sequence[Block], out_dir: Path) -> list[str]:
    """The blocks as HTML fragments; figures are read from `out_dir` and embedded."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f'<p class="{block.style}">{escape(block.text)}</p>' if block.style
                         else f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Items):
            items = []
            for i in block.items:
                text = f'<span class="{i.style}">{escape(i.text)}</span>' if i.style else escape(i.text)
                items.append(f"<li><strong>{escape(i.lead)}</strong>: {text}</li>" if i.lead else f"<li>{text}</li>")
            parts.append("<ul>" + "".join(items) + "</ul>")
        elif isinstance(block, Pairs):
            parts.append('<dl class="prov">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
                                                      for k, v in block.items) + "</dl>")
        elif isinstance(block, Table):
            head = "".join(_html_cell(c, "th", block.numeric(i)) for i, c in enumerate(block.header))
            body = []
            for r, row in enumerate(block.rows):
                style = block.row_styles[r] if r < len(block.row_styles) else ""
                tds = "".join(_html_cell(c, "td", block.numeric(i)) for i, c in enumerate(row))
                body.append(f'<tr class="{style}">{tds}</tr>' if style else f"<tr>{tds}</tr>")
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif isinstance(block, Figures):
            if block.heading:
                parts.append(f"<h3>{escape(block.heading)}</h3>")
            parts.append('<div class="figs">' + "".join(_html_figure(out_dir, label, path, block.caption)
                                                        for label, path in block.figures) + "</div>")
    return parts


# ------------------------------------------------------------------------------------------- terminal

def _rich_cell(cell: Cell) -> RichText:
    style = "bold green" if cell.best else " ".join(s for s in ("bold" if cell.strong else "",
                                                                TERMINAL_STYLE.get(cell.style, "")) if s)
    return RichText(cell.text, style=style)


def terminal(blocks: Sequence[Block]) -> list[RenderableType]:
    """The blocks as rich renderables (figures as their paths)."""
    out: list[RenderableType] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(RichText(block.text, style="bold"))
        elif isinstance(block, Paragraph):
            out.append(RichText(block.text, style=TERMINAL_STYLE.get(block.style, "")))
        elif isinstance(block, Items):
            for item in block.items:
                line = RichText(f"{item.lead}: " if item.lead else "", style="bold")
                line.append(item.text, style=TERMINAL_STYLE.get(item.style, ""))
                out.append(Padding(line, (0, 0, 0, 2)) if block.indent else line)
        elif isinstance(block, Pairs):
            out += [RichText(f"{k}: {v}") for k, v in block.items]
        elif isinstance(block, Table):
            table = RichTable(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
            for col, c in enumerate(block.header):
                table.add_column(_rich_cell(c), justify="right" if block.numeric(col) else "left",
                                 no_wrap=True, overflow="fold")
            for r, row in enumerate(block.rows):
                style = "dim" if r < len(block.row_styles) and block.row_styles[r] == "ref" else None
                table.add_row(*(_rich_cell(c) for c in row), style=style)
            out.append(table)
        elif isinstance(block, Figures):
            out += [RichText(f"{block.heading + ': ' if block.heading else ''}{label}: {path}")
                    for label, path in block.figures]
    return out


__all__ = ["Block", "Cell", "Figures", "Heading", "Item", "Items", "Pairs", "Paragraph", "Table", "cells",
           "embed_png", "html", "markdown", "md_table", "md_text", "md_url", "terminal"]
