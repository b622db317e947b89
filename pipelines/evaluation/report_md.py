"""Markdown rendering of a `metrics` table (the human-readable evaluation report)."""

from __future__ import annotations

import polars as pl

from pipelines.evaluation.beyond_accuracy import BEYOND_ACCURACY_METRICS
from pipelines.evaluation.ranking_metrics import ACCURACY_METRICS
from pipelines.evaluation.segments import SEGMENT_ORDER

# One table per family; metrics outside both families get a table of their own.
METRIC_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Accuracy", ACCURACY_METRICS),
    ("Beyond accuracy", BEYOND_ACCURACY_METRICS),
)
_REQUIRED = ("metric", "k", "segment", "value", "n_users")
_MISSING = "-"


def _ordered(values: list[str], preferred: tuple[str, ...]) -> list[str]:
    known = [v for v in preferred if v in values]
    return known + sorted(v for v in values if v not in preferred)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _family_table(frame: pl.DataFrame, metric_order: tuple[str, ...]) -> list[str]:
    """Rows metric@k (family order, then k), columns segments, plus an n_users row."""
    segments = _ordered(frame.get_column("segment").unique().to_list(), SEGMENT_ORDER)
    metrics = _ordered(frame.get_column("metric").unique().to_list(), metric_order)
    cells = {(r["metric"], r["k"], r["segment"]): r["value"] for r in frame.iter_rows(named=True)}
    n_users = dict(frame.group_by("segment").agg(pl.col("n_users").max()).iter_rows())
    rows = []
    for metric in metrics:
        ks = sorted(frame.filter(pl.col("metric") == metric).get_column("k").unique().to_list())
        for k in ks:
            values = [cells.get((metric, k, s)) for s in segments]
            rows.append([f"{metric}@{k}"] + [_MISSING if v is None else f"{v:.4f}" for v in values])
    rows.append(["n_users"] + [str(n_users[s]) for s in segments])
    return _markdown_table(["metric"] + segments, rows)


def render_report_md(
    metrics: pl.DataFrame, title: str, extra_sections: list[str] | None = None
) -> str:
    """A markdown report of a `metrics` table.

    A `# title` line, then per evaluated table (the `table` column, if present) one
    table per metric family: rows metric@k, columns segments, values with 4 decimals
    ("-" where a metric is not reported for a segment), and a last row with n_users per
    segment. `extra_sections` are appended verbatim, in order, separated by blank lines.
    """
    missing = [c for c in _REQUIRED if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics is missing columns {missing}; got columns {metrics.columns}")
    parts: list[str] = [f"# {title}"]
    if metrics.height == 0:
        parts.append("No metrics.")
    tables = (
        _ordered(metrics.get_column("table").unique().to_list(), ("rankings", "candidates"))
        if "table" in metrics.columns
        else [None]
    )
    for table in tables:
        frame = metrics if table is None else metrics.filter(pl.col("table") == table)
        known = {m for _, family in METRIC_FAMILIES for m in family}
        others = tuple(sorted(set(frame.get_column("metric").to_list()) - known))
        for family_name, family in (*METRIC_FAMILIES, ("Other", others)):
            part = frame.filter(pl.col("metric").is_in(list(family)))
            if part.height == 0:
                continue
            heading = family_name if table is None else f"{family_name} ({table})"
            parts.append("\n".join([f"## {heading}", "", *_family_table(part, family)]))
    parts.extend(extra_sections or [])
    return "\n\n".join(parts) + "\n"
