"""The results table model shared by the terminal, markdown and HTML reports: which columns to show
(from the metrics' own declarations in `metric_info`), how each number reads (from its unit), and
the verdict (`aebench.verdict.ranking`) behind every highlight, so the three reports always agree.

Nothing here looks at a metric's key to decide what it means: label, unit, group, role and direction
all come from the results document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from aebench.errors import UnknownNameError, did_you_mean
from aebench.infra.numbers import format_number, is_finite_number
from aebench.results.schema import GROUPS, MetricInfo, ResultsDocument, check_results
from aebench.verdict.decision import END_TEXT, recommendation
from aebench.verdict.ranking import MetricJudgement, Status, Verdict, format_rank, judge

GROUP_TITLES = {
    "region": "region hits (diagnostic: read with latent recall)",
    "latent": "latent space, against held-out latents",
    "image_recon": "images, against decoded real latents (the sampler's own effect)",
    "image": "images, against real images (decoder + sampler)",
    "other": "other metrics",
}


def result_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """References first, then samplers, in the order the run produced them."""
    return [*results.get("references", []), *results.get("samplers", [])]


def spread_text(entry: Mapping[str, Any] | None, unit: str = "", *, interval: bool = True) -> str:
    """'± std' over seeds, else '[low, high]' when the metric has its own interval (`interval=False`:
    the std only), else ''."""
    if not entry or entry.get("value") is None:
        return ""
    like = entry["value"]
    if entry.get("std") is not None:
        return f"± {format_number(entry['std'], unit=unit, like=like)}"
    if interval and entry.get("low") is not None and entry.get("high") is not None:
        return f"[{format_number(entry['low'], unit=unit, like=like)}, {format_number(entry['high'], unit=unit, like=like)}]"
    return ""


def format_entry(entry: Mapping[str, Any] | None, unit: str = "", *, spread: bool = True) -> str:
    """One cell: the value, then its spread (see `spread_text`)."""
    if not entry or entry.get("value") is None:
        return "—"
    text = format_number(entry["value"], unit=unit)
    extra = spread_text(entry, unit) if spread else ""
    return f"{text} {extra}" if extra else text


@dataclass(frozen=True)
class ColumnView:
    """One metric column as every report shows it."""

    key: str
    label: str
    unit: str
    group: str
    role: str
    higher_is_better: bool | None
    description: str
    status: Status
    reason: str
    flat_value: float | None = None

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else ("↑" if self.higher_is_better else "↓")

    @property
    def header(self) -> str:
        """Label, unit (other than rate) and ↑/↓."""
        unit = f" ({self.unit})" if self.unit and self.unit != "rate" else ""
        return f"{self.label}{unit}" + (f" {self.arrow}" if self.arrow else "")

    @property
    def informative(self) -> bool:
        return self.status != "flat"


@dataclass(frozen=True)
class CellView:
    value: str  # the number, formatted by the column's unit ('—' when missing)
    spread: str  # '± std' or '[low, high]' or ''
    std: str  # '± std' or ''
    best: bool  # at the top of a ranking column with some row clearly behind it
    rank: tuple[int, int] | None = None

    def text(self, spread: str = "full") -> str:
        """'full': value and interval or std; 'std': value and std only; 'none': the value."""
        extra = {"full": self.spread, "std": self.std}.get(spread, "")
        return f"{self.value} {extra}" if extra else self.value


@dataclass
class RowView:
    name: str
    kind: str  # 'sampler' or 'reference'
    failed: bool
    error: str
    n: int | None
    time_s: float | None
    variant: str  # 'base sampler (options set)' when the row is a labelled variant, else ''
    rank: tuple[int, int] | None
    best: bool
    cells: dict[str, CellView] = field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"

    @property
    def rank_text(self) -> str:
        return format_rank(self.rank) if self.rank else ""


@dataclass
class ResultsTable:
    title: str
    caption: str
    columns: list[ColumnView]
    rows: list[RowView]
    verdict: Verdict
    race: Mapping[str, Any] | None = None  # the document's racing rounds (`aebench run --decide`)

    def select(self, *, roles: Iterable[str] | None = None, informative_only: bool = False) -> list[ColumnView]:
        roles = None if roles is None else set(roles)
        return [c for c in self.columns
                if (roles is None or c.role in roles) and (c.informative or not informative_only)]

    def groups(self, columns: Sequence[ColumnView]) -> list[tuple[str, list[ColumnView]]]:
        """`columns` by group, groups in GROUPS order, others after them in order of appearance."""
        out: dict[str, list[ColumnView]] = {}
        for c in columns:
            out.setdefault(c.group, []).append(c)
        return list(out.items())

    @property
    def flat(self) -> list[ColumnView]:
        return [c for c in self.columns if not c.informative]

    @property
    def variants(self) -> list[tuple[str, str]]:
        return [(r.name, r.variant) for r in self.rows if r.variant]

    @property
    def failed(self) -> list[RowView]:
        return [r for r in self.rows if r.failed]

    def top_line(self) -> str:
        """The recommendation the decision gives (markdown: names in backticks), or '' with fewer than two
        ranked samplers."""
        decision = self.verdict.decision
        if decision is None or len(self.verdict.overall) < 2:
            return ""
        text = recommendation(decision, self.race, self.verdict.aliases)
        if decision.end in ("first", "equivalent") and self.verdict.validated and self.verdict.uncovered:
            text += f" Nothing trusted here judges {', '.join(self.verdict.uncovered)}: choose on those by other means."
        return text

    def race_line(self) -> str:
        """What the racing rounds spent and where they ended; '' without racing rounds."""
        return race_text(self.race, self.verdict.decision)


def metric_columns(results: Mapping[str, Any], metrics: Sequence[str] | None = None) -> list[str]:
    """Metric keys in display order (by declared group, then as the run declared them); `metrics`
    picks and orders some of them, each checked to exist."""
    info: Mapping[str, MetricInfo] = results.get("metric_info", {})
    if metrics is not None:
        unknown = [m for m in metrics if m not in info]
        if unknown:
            hint = did_you_mean(unknown[0], info)
            raise UnknownNameError(
                f"Unknown metric {unknown[0]!r} in these results.{hint} Pick from: {', '.join(info) or '(none)'}."
            )
        return list(dict.fromkeys(metrics))
    rank = {g: i for i, g in enumerate(GROUPS)}
    keys = list(info)
    first_seen = {g: i for i, g in reversed(list(enumerate(info[k].get("group", "other") for k in keys)))}
    return sorted(keys, key=lambda k: (rank.get(info[k].get("group", "other"), len(GROUPS)),
                                       first_seen[info[k].get("group", "other")], keys.index(k)))


def _column(judgement: MetricJudgement) -> ColumnView:
    info = judgement.info
    return ColumnView(judgement.key, info.get("label") or judgement.key, info.get("unit", ""),
                      info.get("group", "other"), info.get("role", "info"), info.get("higher_is_better"),
                      info.get("description", ""), judgement.status, judgement.reason, judgement.flat_value)


def _option_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_option_text(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_text(results: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """For a labelled variant: its registered sampler and the options the suite set, e.g.
    'plane_paths (others=conditional, angles=[0, 45])'; '' for a plain sampler row."""
    if row.get("kind") != "sampler":
        return ""
    base = row.get("sampler") or row["name"]
    specs = [s for s in (results.get("config") or {}).get("samplers", [])
             if isinstance(s, Mapping) and s.get("label", s.get("name")) == row["name"]]
    chosen = dict(specs[0].get("options") or {}) if specs else {}
    resolved = row.get("options") or {}
    parts = [f"{k}={_option_text(resolved.get(k, v))}" for k, v in chosen.items()]
    if base == row["name"] and not parts:
        return ""
    return base + (f" ({', '.join(parts)})" if parts else "")


def build_table(results: ResultsDocument | Mapping[str, Any], metrics: Sequence[str] | None = None) -> ResultsTable:
    """The table model of a results document (every metric, or the `metrics` given); the document is
    checked against the results schema first, so no report renders a malformed file."""
    check_results(results, "results")
    keys = metric_columns(results, metrics)
    verdict = judge(results, keys)
    if metrics is not None:  # a subset of the columns on show; the decision always rests on every metric
        verdict.decision = judge(results).decision
    columns = [_column(verdict.metrics[k]) for k in keys]
    order = {name: i for i, name in enumerate(verdict.order)}
    samplers = results.get("samplers", [])
    run_order = {r["name"]: i for i, r in enumerate(samplers)}
    ranked = sorted(samplers, key=lambda r: (r.get("status", "ok") != "ok", order.get(r["name"], len(order)),
                                             run_order[r["name"]]))
    rows = []
    for row in [*results.get("references", []), *ranked]:
        is_ref = row.get("kind") == "reference"
        failed = row.get("status", "ok") != "ok"
        cells = {}
        if not failed:
            for col in columns:
                entry = row.get("metrics", {}).get(col.key)
                judgement = verdict.metrics[col.key]
                value = format_entry(entry, col.unit, spread=False)
                spread = spread_text(entry, col.unit) if value != "—" else ""
                std = spread_text(entry, col.unit, interval=False) if value != "—" else ""
                cells[col.key] = CellView(value, spread, std, not is_ref and row["name"] in judgement.best,
                                          judgement.ranks.get(row["name"]) if not is_ref else None)
        total = (row.get("timing") or {}).get("total_s")
        rows.append(RowView(
            name=row["name"], kind=row.get("kind", "sampler"), failed=failed,
            error=str(row.get("error", "unknown error")) if failed else "",
            n=row.get("n"), time_s=float(total) if is_finite_number(total) else None,
            variant=variant_text(results, row), rank=None if is_ref else verdict.overall.get(row["name"]),
            best=not is_ref and row["name"] in verdict.best, cells=cells,
        ))
    dataset = (results.get("config") or {}).get("dataset") or (results.get("dataset") or {}).get("name") or "results"
    return ResultsTable(f"aebench: {dataset}", caption(results), columns, rows, verdict, results.get("race"))


def race_text(race: Mapping[str, Any] | None, decision: Any = None) -> str:
    """'Racing: 3 rounds, 9,344 decoded images, 412 s (budget 15 m); ended: decided, a unique first place.
    Left after round 1: uniform, gaussian.'"""
    if not race:
        return ""
    rounds = race.get("rounds") or []
    why = {"decided": "decided", "budget": "budget spent", "rounds": "round limit reached",
           "no_contenders": "nothing to decide"}.get(race.get("stopped", ""), race.get("stopped", "?"))
    end = END_TEXT.get(getattr(decision, "end", ""), "")
    text = (f"Racing: {len(rounds)} round(s), {int(race.get('spent_images', 0)):,} decoded images, "
            f"{float(race.get('spent_seconds', 0.0)):.0f} s (budget {(race.get('budget') or {}).get('text', '?')}); "
            f"ended: {why}" + (f", {end}" if end and race.get("stopped") != "decided" else
                               f" ({end})" if end else "") + ".")
    left: dict[int, list[str]] = {}
    for name, after in (race.get("left") or {}).items():
        left.setdefault(int(after), []).append(name)
    for after in sorted(left):
        text += f" Left after round {after}: {', '.join(left[after])}."
    return text



def seed_text(seeds: Sequence[int] | None) -> str:
    return ", ".join(str(s) for s in seeds) if seeds else "?"


def caption(results: Mapping[str, Any]) -> str:
    """Where the numbers come from: extractor, reference set, counts, seeds, target, model checksum."""
    cfg = (results.get("config") or {})
    feats = (results.get("features") or {})
    model = (results.get("model") or {})
    parts = []
    if feats:
        judge_text = "" if feats.get("judge", True) else " (not a validated judge)"
        others = [r.get("extractor", "?") for r in ((results.get("judges") or {}).get("extractors") or [])[1:]]
        also = f" (and {', '.join(others)}: keys ending in @name)" if others else ""
        parts.append(
            f"features: {feats.get('extractor', '?')}{judge_text}{also}, reference {feats.get('reference', '?')} "
            f"images, n_real {feats.get('n_real', '?')}"
        )
    parts.append(f"n {cfg.get('n', '?')} per seed" + (f" (latent metrics: {cfg['n_latent']})" if cfg.get("n_latent") else ""))
    parts.append(f"seeds {seed_text(cfg.get('seeds'))}")
    if cfg.get("target") is not None:
        parts.append(f"regions calibrated to {format_number(cfg['target'], unit='rate')}")
    if model.get("checksum"):
        parts.append(f"model {str(model['checksum'])[:12]}")
    return " · ".join(parts)


__all__ = ["CellView", "ColumnView", "ResultsTable", "RowView", "build_table", "caption", "format_entry",
           "format_number", "metric_columns", "result_rows", "seed_text", "spread_text", "variant_text"]
