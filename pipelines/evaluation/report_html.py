"""report.html: one self-contained page per run, read at a glance (inline SVG, no network).

Top to bottom, for an evaluation run: the headline table (the final `rankings` vs the fused
`candidates` vs each source alone, `candidates:<source>`, vs `candidates:popular`, the
baseline; NDCG, HR, recall, MRR at every k of the run, segment `all`, the best value of
each column highlighted), NDCG@k and HR@k curves over k, the segments as small multiples,
coverage / Gini / novelty, then the run's plan with stage times and row counts, candidate
sources, graph and PPR walks (report_run). A serve run (eval.target = "serve") has no labels:
its metrics table holds only label-free rows, and the page shows those instead of accuracy.

A tiny inline script counts the charts that rendered with a non-empty box
(`data-charts-rendered` on <body>), which the headless browser test reads back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipelines import tableio
from pipelines.evaluation.beyond_accuracy import BEYOND_ACCURACY_METRICS
from pipelines.evaluation.ranking_metrics import ACCURACY_METRICS
from pipelines.evaluation.report_run import committed_manifests, run_sections, section
from pipelines.evaluation.report_svg import Series, esc, finite, svg_bars, svg_lines
from pipelines.evaluation.segments import SEGMENT_ALL, SEGMENT_ORDER
from pipelines.storage import Location, as_location

HEADLINE_METRICS: tuple[str, ...] = ("ndcg", "hr", "recall", "mrr")
CURVE_METRICS: tuple[str, ...] = ("ndcg", "hr")
COUNT_METRICS: tuple[str, ...] = ("users", "catalog_items", "recommended_items")
POPULAR = "candidates:popular"
_NAMES = {"ndcg": "NDCG", "hr": "HR", "recall": "recall", "mrr": "MRR", "precision": "precision",
          "map": "MAP", "coverage": "coverage", "gini": "Gini", "novelty": "novelty",
          "users": "users", "catalog_items": "catalog items",
          "recommended_items": "recommended items"}  # fmt: skip
_SEGMENT_NAMES = {"all": "all users", "hist_le5": "history ≤ 5 events",
                  "hist_6_20": "history 6–20 events", "hist_gt20": "history > 20 events",
                  "pop_head": "held-out item popular (head)",
                  "pop_tail": "held-out item in the long tail"}  # fmt: skip
_PALETTE = ("#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
            "#17becf", "#8c564b", "#bcbd22")  # fmt: skip
_FIXED_COLORS = {"rankings": "#1f4e9c", "candidates": "#f28e2b", POPULAR: "#8a8a8a"}
_CHECK = """<script>
window.addEventListener('load', function () {
  var n = 0;
  document.querySelectorAll('svg.chart').forEach(function (s) {
    var b = s.getBBox(); if (b.width > 0 && b.height > 0) { n += 1; }
  });
  document.body.setAttribute('data-charts-rendered', String(n));
});
</script>"""
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:1.5em auto;
 padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.facts,.note,.plan{color:#555}.lead{font-size:1.1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d4d4d4;padding:3px 7px}
.wide{overflow-x:auto}.grid-table{font-size:14px}.grid-table td{padding:2px 5px}
th{text-align:left;background:#f6f6f6;white-space:nowrap}td.num,.grid-table td{text-align:right;
 font-variant-numeric:tabular-nums}
thead th{text-align:center}td.best{background:#c9ecc9;font-weight:bold}
tr.baseline th,tr.baseline td{color:#666;font-style:italic}tr.skipped{color:#888}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
.row{display:flex;flex-wrap:wrap;gap:12px}.multiples{display:grid;
 grid-template-columns:repeat(3,1fr);gap:6px 12px}
.banner{background:#fff4d6;border:1px solid #e8c96a;padding:.6em 1em;border-radius:4px}
"""


def table_label(table: str) -> str:
    if table == "rankings":
        return "rankings (final)"
    if table == "candidates":
        return "candidates (fused)"
    if table == POPULAR:
        return "popular (baseline)"
    return table.removeprefix("candidates:")


def ordered_tables(metrics: pl.DataFrame, metric: str, k: int) -> list[str]:
    """rankings, candidates, the sources best first by metric@k (else by name), popular last."""
    tables = metrics.get_column("table").unique().to_list()
    score = {
        r["table"]: r["value"]
        for r in metrics.filter(
            (pl.col("metric") == metric) & (pl.col("k") == k) & (pl.col("segment") == SEGMENT_ALL)
        ).iter_rows(named=True)
    }
    sources = sorted(
        (t for t in tables if t not in ("rankings", "candidates", POPULAR)),
        key=lambda t: (-score[t] if finite(score.get(t)) else float("inf"), t),
    )
    head = [t for t in ("rankings", "candidates") if t in tables]
    return head + sources + ([POPULAR] if POPULAR in tables else [])


def table_colors(tables: Sequence[str]) -> dict[str, str]:
    others = iter(_PALETTE * (1 + len(tables) // len(_PALETTE)))
    return {t: _FIXED_COLORS.get(t) or next(others) for t in tables}


def _fmt(metric: str, v: float | None) -> str:
    if not finite(v):
        return "-"
    if metric in COUNT_METRICS:
        return f"{v:,.0f}"
    return f"{v:.2f}" if metric == "novelty" else f"{v:.4f}"


def grid_table(
    metrics: pl.DataFrame,
    names: Sequence[str],
    tables: Sequence[str],
    *,
    table_id: str,
    best: Sequence[str] = (),
) -> str:
    """Rows tables, a column per (metric, k) of segment `all`; a metric whose values are the
    same at every k gets one column. Columns of the metrics in `best`: the highest value
    (every tie) gets class "best", unless every table has the same value."""
    rows = metrics.filter(pl.col("segment") == SEGMENT_ALL)
    cell = {(r["table"], r["metric"], r["k"]): r["value"] for r in rows.iter_rows(named=True)}
    columns: list[tuple[str, int]] = []
    any_k = set()  # metrics shown once because they are the same at every k
    for m in names:
        ks = sorted(rows.filter(pl.col("metric") == m).get_column("k").unique().to_list())
        if len(ks) > 1 and all(len({cell.get((t, m, k)) for k in ks}) == 1 for t in tables):
            any_k.add(m)
            ks = ks[-1:]
        columns.extend((m, k) for k in ks)
    top = {}
    for m, k in columns:
        values = [v for t in tables if finite(v := cell.get((t, m, k)))]
        # A column where every table ties has no best (e.g. a popular-only run).
        top[(m, k)] = max(values) if m in best and len(set(values)) > 1 else None
    metric_heads, k_heads = ["<th rowspan='2'>table</th>"], []
    for m in dict.fromkeys(m for m, _ in columns):
        mine = [k for mm, k in columns if mm == m]
        multi = len(mine) > 1
        metric_heads.append(
            f"<th colspan='{len(mine)}'>{esc(_NAMES.get(m, m))}</th>"
            if multi
            else f"<th rowspan='2'>{esc(_NAMES.get(m, m))}"
            + ("" if m in any_k or m in COUNT_METRICS else f"@{mine[0]}")
            + "</th>"
        )
        k_heads.extend(f"<th>@{k}</th>" for k in mine if multi)
    body = []
    for t in tables:
        tds = []
        for m, k in columns:
            v = cell.get((t, m, k))
            hit = top[(m, k)] is not None and finite(v) and v == top[(m, k)]
            tds.append(('<td class="best">' if hit else "<td>") + f"{_fmt(m, v)}</td>")
        cls = ' class="baseline"' if t == POPULAR else ""
        body.append(
            f'<tr{cls} data-table="{esc(t)}"><th title="{esc(t)}">{esc(table_label(t))}</th>'
            + "".join(tds)
            + "</tr>"
        )
    return (
        f'<table id="{esc(table_id)}" class="grid-table"><thead><tr>{"".join(metric_heads)}</tr>'
        f"<tr>{''.join(k_heads)}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _value(metrics: pl.DataFrame, table: str, metric: str, k: int) -> float | None:
    hit = metrics.filter(
        (pl.col("table") == table)
        & (pl.col("metric") == metric)
        & (pl.col("k") == k)
        & (pl.col("segment") == SEGMENT_ALL)
    )
    return hit.item(0, "value") if hit.height else None


def _lead(metrics: pl.DataFrame, tables: list[str], k: int) -> str:
    """One sentence: the final table's NDCG@k, its lift over popular, the best single source."""
    main = next((t for t in ("rankings", "candidates") if t in tables), None)
    if main is None:
        return ""
    v = _value(metrics, main, "ndcg", k)
    if not finite(v):
        return ""
    parts = [f"<b>{esc(table_label(main))}</b>: NDCG@{k} <b>{v:.4f}</b>"]
    pop = _value(metrics, POPULAR, "ndcg", k)
    if finite(pop) and pop > 0:
        parts.append(f"{v / pop:.1f}× popular ({pop:.4f})")
    sources = [t for t in tables if t.startswith("candidates:") and t != POPULAR]
    if sources:  # ordered_tables put the best source first
        parts.append(
            f"best single source: {esc(table_label(sources[0]))} "
            f"({_fmt('ndcg', _value(metrics, sources[0], 'ndcg', k))})"
        )
    return f'<p class="lead">{" · ".join(parts)}</p>'


def _legend(tables: Sequence[str], colors: dict[str, str]) -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span class="swatch" style="background:{colors[t]}"></span>{esc(table_label(t))}'
            for t in tables
        )
        + "</p>"
    )


def _same_values(metrics: pl.DataFrame, a: str, b: str) -> bool:
    """Metric a equals metric b in every (table, k, segment) where either is reported."""
    pa, pb = (
        metrics.filter(pl.col("metric") == m).select("table", "k", "segment", "value")
        for m in (a, b)
    )
    if pa.height == 0 or pa.height != pb.height:
        return False
    joined = pa.join(pb, on=["table", "k", "segment"], how="inner")
    return joined.height == pa.height and bool((joined["value"] == joined["value_right"]).all())


def headline_section(metrics: pl.DataFrame, tables: list[str], k: int) -> str:
    names = [m for m in HEADLINE_METRICS if m in set(metrics.get_column("metric").to_list())]
    note = ""
    if "recall" in names and "hr" in names and _same_values(metrics, "recall", "hr"):
        names.remove("recall")  # one held-out item per user: recall@k is HR@k
        note = (
            " Recall equals HR in every cell here (one held-out item per user), so it is left out."
        )
    return section(
        "Headline: rankings vs each source vs popular",
        [
            _lead(metrics, tables, k),
            '<div class="wide">',
            grid_table(metrics, names, tables, table_id="headline", best=names),
            "</div>",
            '<p class="note">All evaluated users (segment <i>all</i>); best value per column '
            "highlighted. A source's row is its own ranking, as far as it survived the fused "
            f"top-n cut.{note}</p>",
        ],
        sid="headline-section",
    )


def curves_section(
    metrics: pl.DataFrame, tables: list[str], colors: dict[str, str], ks: list[int]
) -> str:
    charts = []
    for m in CURVE_METRICS:
        series = [
            Series(table_label(t), [_value(metrics, t, m, k) for k in ks], colors[t],
                   dashed=t == POPULAR, bold=t == "rankings")
            for t in tables
        ]  # fmt: skip
        charts.append(svg_lines(f"{_NAMES[m]}@k over k", ks, series))
    return section(
        "NDCG@k and HR@k over k",
        [_legend(tables, colors), f'<div class="row">{"".join(charts)}</div>'],
        sid="curves",
    )


def segments_section(
    metrics: pl.DataFrame, tables: list[str], colors: dict[str, str], k: int
) -> str:
    """One small bar chart per segment, for NDCG@k then HR@k; one scale across the panels."""
    body = [
        '<p class="note">History length = the user\'s training events; head/tail = the '
        "popularity of the held-out item. Bars on one scale across the panels of a metric.</p>"
    ]
    for m in CURVE_METRICS:
        rows = metrics.filter((pl.col("metric") == m) & (pl.col("k") == k))
        present = set(rows.get_column("segment").to_list())
        segs = [s for s in SEGMENT_ORDER if s in present] + sorted(present - set(SEGMENT_ORDER))
        if not segs:
            continue
        cell = {(r["table"], r["segment"]): r for r in rows.iter_rows(named=True)}
        top = max((r["value"] for r in cell.values() if finite(r["value"])), default=0.0)
        panels = []
        for s in segs:
            users = max((cell[(t, s)]["n_users"] or 0 for t in tables if (t, s) in cell), default=0)
            values = [cell[(t, s)]["value"] if (t, s) in cell else None for t in tables]
            panels.append(
                svg_bars(f"{_SEGMENT_NAMES.get(s, s)} · {users:,} users",
                         [table_label(t) for t in tables], values, "{:.4f}",
                         colors=[colors[t] for t in tables], width=350, label_width=118, top=top)
            )  # fmt: skip
        body.append(f"<h3>{_NAMES[m]}@{k} by segment</h3>")
        body.append(f'<div class="multiples">{"".join(panels)}</div>')
    return section("Segments", body, sid="segments")


def label_free_section(
    metrics: pl.DataFrame, tables: list[str], colors: dict[str, str], k: int, *, title: str,
    table_id: str,
) -> str:  # fmt: skip
    """Counts (serve runs), then coverage / Gini / novelty: a table and one chart per metric."""
    present = set(metrics.get_column("metric").to_list())
    names = [m for m in (*COUNT_METRICS, *BEYOND_ACCURACY_METRICS) if m in present]
    body = [f'<div class="wide">{grid_table(metrics, names, tables, table_id=table_id)}</div>']
    body.append(
        '<p class="note">coverage: share of the catalog recommended at least once (higher = '
        "more of the catalog used); Gini: inequality of item exposure (0 = even, 1 = one item "
        "takes all); novelty: mean self-information −log₂ p(item) in bits (higher = less "
        "popular items).</p>"
    )
    charts = []
    for m in BEYOND_ACCURACY_METRICS:
        if m in present:
            values = [_value(metrics, t, m, k) for t in tables]
            charts.append(
                svg_bars(f"{_NAMES[m]}@{k}", [table_label(t) for t in tables], values,
                         "{:.2f}" if m == "novelty" else "{:.4f}",
                         colors=[colors[t] for t in tables], width=350, label_width=118)
            )  # fmt: skip
    body.append(f'<div class="multiples">{"".join(charts)}</div>')
    return section(title, body, sid="label-free")


def is_label_free(metrics: pl.DataFrame) -> bool:
    """No accuracy rows: a serve run, whose rankings have no labels to be scored against."""
    return not set(metrics.get_column("metric").to_list()) & set(ACCURACY_METRICS)


def metrics_sections(metrics: pl.DataFrame, k: int, target: str | None = None) -> list[str]:
    """The metrics part of the page, from a `metrics` table (see the module docstring)."""
    if metrics.height == 0:
        return [section("Metrics", ["<p>The metrics table is empty.</p>"])]
    ks = sorted(metrics.get_column("k").unique().to_list())
    k = k if k in ks else ks[0]
    if is_label_free(metrics):
        tables = ordered_tables(metrics, "coverage", k)
        colors = table_colors(tables)
        banner = (
            '<p class="banner" id="serve-banner"><b>Serve run</b>'
            + (f" (eval.target = {esc(target)})" if target else "")
            + ": the rankings are each user's recommendations for their next event, fitted on "
            "every event, so there are no labels: no NDCG, HR or recall. These are the "
            "label-free metrics. <code>walkrank evaluate RUN --against NEW_EVENTS</code> scores "
            "the run once the next events have arrived.</p>"
        )
        return [
            banner,
            label_free_section(metrics, tables, colors, k, title="Headline: label-free metrics",
                               table_id="headline"),
        ]  # fmt: skip
    tables = ordered_tables(metrics, "ndcg", k)
    colors = table_colors(tables)
    return [
        headline_section(metrics, tables, k),
        curves_section(metrics, tables, colors, ks),
        segments_section(metrics, tables, colors, k),
        label_free_section(metrics, tables, colors, k, title="Coverage, Gini, novelty",
                           table_id="beyond-accuracy"),
    ]  # fmt: skip


def render_page(title: str, facts: str, sections: list[str]) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_STYLE}</style>{_CHECK}</head><body><h1>{esc(title)}</h1>"
        f'<p class="facts">{facts}</p>{"".join(sections)}</body></html>'
    )


def _facts(manifests: dict[str, dict], metrics: pl.DataFrame | None, target: str | None) -> str:
    parts = [f"target: <b>{esc(target)}</b>"] if target else []
    if metrics is not None and metrics.height:
        ks = sorted(metrics.get_column("k").unique().to_list())
        parts.append("k: " + ", ".join(str(k) for k in ks))
        users = metrics.filter(pl.col("segment") == SEGMENT_ALL).get_column("n_users").max()
        if users and not is_label_free(metrics):
            parts.append(f"{users:,} users evaluated")
    for name in ("events", "items", "train"):
        if name in manifests:
            parts.append(f"{manifests[name]['rows']:,} {name}")
    return " · ".join(parts)


def render_report_html(run_dir: str | Path | Location, k: int = 10) -> str:
    """The report page of a run; sections for tables the run has not committed are left out."""
    run_dir = as_location(run_dir)
    manifests = committed_manifests(run_dir)
    metrics, target = None, None
    sections = []
    if "metrics" in manifests:
        metrics = tableio.read_polars(run_dir, "metrics")
        target = manifests["metrics"].get("extra", {}).get("target")
        sections.extend(metrics_sections(metrics, k, target))
    else:
        sections.append('<p class="note">No committed metrics table in this run.</p>')
    sections.extend(run_sections(run_dir, manifests))
    return render_page(f"WalkRank run {run_dir.name}", _facts(manifests, metrics, target), sections)
