"""report.html: one self-contained page per run (inline SVG charts, no external files).

Sections, each drawn only from what the run has committed: metrics per table and segment,
stage timings (from the manifests), candidate-source overlap and score distribution, graph
degree distribution, PPR walk statistics. A tiny inline script counts the charts that
rendered with a non-empty box (`data-charts-rendered` on <body>), which a headless browser
test reads back.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import polars as pl

from pipelines import tableio

_W, _BAR_H, _LABEL_W = 640, 18, 190
_CHECK = """<script>
window.addEventListener('load', function () {
  var n = 0;
  document.querySelectorAll('svg.chart').forEach(function (s) {
    var b = s.getBBox(); if (b.width > 0 && b.height > 0) { n += 1; }
  });
  document.body.setAttribute('data-charts-rendered', String(n));
});
</script>"""


def svg_bars(title: str, labels: list[str], values: list[float], fmt: str = "{:.4g}") -> str:
    """A horizontal bar chart as inline SVG; bars scaled to the largest |value|."""
    top = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0) or 1
    h = 28 + _BAR_H * len(labels)
    parts = [
        f'<svg class="chart" width="{_W}" height="{h}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 24 + i * _BAR_H
        width = 0 if v is None or not math.isfinite(v) else abs(v) / top * (_W - _LABEL_W - 70)
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{html.escape(str(label))}</text>'
            f'<rect x="{_LABEL_W}" y="{y + 2}" width="{width:.1f}" height="{_BAR_H - 5}" '
            f'fill="#4c78a8"/><text x="{_LABEL_W + width + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{'-' if v is None else fmt.format(v)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _log_histogram(values: pl.Series, title: str) -> str:
    """Counts in power-of-two bins [0], [1], [2,3], [4,7], ...: degree-like data."""
    bins = (
        pl.DataFrame({"v": values})
        .with_columns(b=pl.when(pl.col("v") <= 0).then(-1).otherwise(pl.col("v").log(2).floor()))
        .group_by("b")
        .len()
        .sort("b")
    )
    labels = ["0" if b < 0 else f"{2 ** int(b)}-{2 ** (int(b) + 1) - 1}" for b in bins["b"]]
    return svg_bars(title, labels, [float(x) for x in bins["len"]], "{:.0f}")


def _linear_histogram(values: pl.Series, title: str, n_bins: int = 10) -> str:
    lo, hi = float(values.min()), float(values.max())
    width = (hi - lo) / n_bins or 1.0
    idx = ((values - lo) / width).floor().clip(0, n_bins - 1).cast(pl.Int64)
    counts = idx.value_counts().sort(idx.name)
    full = dict(zip(counts[idx.name].to_list(), counts["count"].to_list(), strict=True))
    labels = [f"{lo + i * width:.3g}" for i in range(n_bins)]
    return svg_bars(title, labels, [float(full.get(i, 0)) for i in range(n_bins)], "{:.0f}")


def _section(title: str, body: list[str]) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{''.join(body)}</section>"


def _committed(run_dir: Path) -> dict[str, dict]:
    out = {}
    for d in sorted(p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if tableio.is_committed(run_dir, d.name):
            out[d.name] = tableio.read_manifest(run_dir, d.name)
    return out


def _metrics_section(run_dir: Path, k: int) -> str:
    m = tableio.read_polars(run_dir, "metrics").filter(pl.col("k") == k)
    charts = []
    for metric in ("ndcg", "hr", "recall", "mrr", "coverage"):
        rows = m.filter(pl.col("metric") == metric).sort("table", "segment")
        if rows.height:
            labels = [f"{t} / {s}" for t, s in zip(rows["table"], rows["segment"], strict=True)]
            charts.append(
                svg_bars(f"{metric}@{k} by table and segment", labels, rows["value"].to_list())
            )
    return _section(f"Metrics at k = {k}", charts)


def _timings_section(manifests: dict[str, dict]) -> str:
    per_stage: dict[str, float] = {}
    for m in manifests.values():
        per_stage[m["stage"]] = max(per_stage.get(m["stage"], 0.0), float(m.get("seconds") or 0))
    stages = list(per_stage)
    return _section(
        "Stage timings (seconds, from the manifests)",
        [svg_bars("seconds per stage", stages, [per_stage[s] for s in stages], "{:.1f}")],
    )


def _candidates_section(run_dir: Path) -> str:
    c = tableio.read_polars(run_dir, "candidates")
    combos = (
        c.select(pl.col("sources").list.sort().list.join("+").alias("combo"))
        .group_by("combo")
        .len()
        .sort("len", descending=True)
        .head(12)
    )
    per_source = c.select(pl.col("sources").explode()).group_by("sources").len().sort("sources")
    return _section(
        "Candidate sources",
        [
            svg_bars("candidates per source", per_source["sources"].to_list(),
                     [float(x) for x in per_source["len"]], "{:.0f}"),
            svg_bars("source overlap (sources that proposed the same item)",
                     combos["combo"].to_list(), [float(x) for x in combos["len"]], "{:.0f}"),
            _linear_histogram(c["score"], "fused score distribution"),
        ],
    )  # fmt: skip


def _graph_section(run_dir: Path) -> str:
    nodes = tableio.read_polars(run_dir, "graph_nodes")
    return _section(
        "Item-transition graph",
        [
            _log_histogram(nodes["out_degree"], "out-degree distribution (nodes per bin)"),
            _log_histogram(nodes["in_degree"], "in-degree distribution (nodes per bin)"),
        ],
    )


def _ppr_section(manifest: dict) -> str:
    extra = manifest.get("extra", {})
    keys = ("strategy", "sources", "walks", "steps", "walk_seconds", "steps_per_second", "rows")
    rows = "".join(
        f"<tr><th>{k}</th><td>{html.escape(json.dumps(extra[k]))}</td></tr>"
        for k in keys
        if k in extra
    )
    return _section("Personalized PageRank walks", [f"<table>{rows}</table>"])


def render_report_html(run_dir: str | Path, k: int = 10) -> str:
    """The report page of a run; sections for tables the run has not committed are left out."""
    run_dir = Path(run_dir)
    manifests = _committed(run_dir)
    sections = []
    if "metrics" in manifests:
        sections.append(_metrics_section(run_dir, k))
    sections.append(_timings_section(manifests))
    if "candidates" in manifests:
        sections.append(_candidates_section(run_dir))
    if "graph_nodes" in manifests:
        sections.append(_graph_section(run_dir))
    if "item_ppr" in manifests:
        sections.append(_ppr_section(manifests["item_ppr"]))
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{m['rows']:,}</td><td>{html.escape(m['stage'])}</td></tr>"
        for n, m in manifests.items()
    )
    sections.append(
        _section(
            "Tables", [f"<table><tr><th>table</th><th>rows</th><th>stage</th></tr>{rows}</table>"]
        )
    )
    title = f"WalkRank run {html.escape(run_dir.name)}"
    style = (
        "body{font-family:sans-serif;max-width:900px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style>{_CHECK}</head><body><h1>{title}</h1>{''.join(sections)}"
        "</body></html>"
    )
