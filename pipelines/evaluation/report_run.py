"""report.html, the run's side: its plan with stage times and row counts, candidate sources,
the item graph and the PPR walks, each drawn from what the run has committed.

Stage seconds and rows come from the tables' manifests (`stage`, `seconds`, `rows`); a stage's
time is the largest `seconds` of its tables (each is measured from the stage's start).
`<run>/plan.json` ({"stages": [{"name", "planned", "reason"}, ...]}) says which stages the
plan ran and why the others were skipped; runs made before plans were recorded have none,
and their stages are listed from the manifests, in commit order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from pipelines import tableio
from pipelines.evaluation.report_svg import esc, linear_histogram_of, log_histogram, svg_bars
from pipelines.storage import Location, as_location

PLAN_FILE = "plan.json"


def section(title: str, body: list[str], *, sid: str | None = None) -> str:
    ident = f' id="{esc(sid)}"' if sid else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{''.join(body)}</section>"


def committed_manifests(run_dir: Location) -> dict[str, dict]:
    """Manifest of every committed table of the run, in commit order (manifest mtime)."""
    found = []
    run_dir = as_location(run_dir)
    for d in run_dir.list():
        if d.is_dir and not d.rel.startswith((".", "_")):
            mtime = (run_dir / d.rel / tableio.MANIFEST).mtime_ns()
            if mtime is None:
                continue  # no manifest: not a table (fit/, models/) or never committed
            found.append((mtime, d.rel, tableio.read_manifest(run_dir, d.rel)))
    return {name: m for _, name, m in sorted(found, key=lambda t: (t[0], t[1]))}


def read_plan(run_dir: Location) -> tuple[list[dict] | None, str | None]:
    """(the plan's stages, None), or (None, why there is no usable plan)."""
    path = as_location(run_dir) / PLAN_FILE
    if not path.exists():
        return None, f"no {PLAN_FILE} (a run made before plans were recorded)"
    try:
        stages = json.loads(path.read_text())["stages"]
        if not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in stages):
            raise ValueError("every stage needs a name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{PLAN_FILE} is unreadable ({type(exc).__name__}: {exc})"
    return stages, None


@dataclass
class StageRow:
    name: str
    planned: bool | None = None  # None: no plan says
    reason: str = ""
    seconds: float | None = None
    tables: list[tuple[str, int]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.planned is False:
            return "skipped"
        if self.tables:
            return "ran"
        return "planned, nothing committed" if self.planned else "-"


def stage_rows(manifests: dict[str, dict], plan: list[dict] | None) -> list[StageRow]:
    """One row per stage: the plan's stages in plan order, then stages only the manifests know."""
    rows: dict[str, StageRow] = {}
    for s in plan or []:
        rows[s["name"]] = StageRow(
            s["name"], bool(s.get("planned", True)), str(s.get("reason", ""))
        )
    for name, m in manifests.items():
        stage = str(m.get("stage", "?"))
        row = rows.setdefault(stage, StageRow(stage))
        row.tables.append((name, int(m.get("rows") or 0)))
        secs = m.get("seconds")
        if secs is not None:
            row.seconds = max(row.seconds or 0.0, float(secs))
    return list(rows.values())


def plan_section(manifests: dict[str, dict], plan: list[dict] | None, note: str | None) -> str:
    rows = stage_rows(manifests, plan)
    ran = [r for r in rows if r.planned is not False]
    body = [
        '<p class="plan">plan: '
        + " &gt; ".join(esc(r.name) for r in ran)
        + (f" &nbsp;·&nbsp; total {sum(r.seconds or 0 for r in ran):,.1f} s" if ran else "")
        + "</p>"
    ]
    if note:
        body.append(f'<p class="note">{esc(note)}; stages below come from the manifests.</p>')
    cells = []
    for r in rows:
        tables = ", ".join(f"{esc(t)}&nbsp;{n:,}" for t, n in r.tables) or "-"
        secs = "-" if r.seconds is None else f"{r.seconds:,.1f}"
        cls = ' class="skipped"' if r.planned is False else ""
        cells.append(
            f"<tr{cls}><th>{esc(r.name)}</th><td>{esc(r.status)}</td><td>{esc(r.reason)}</td>"
            f'<td class="num">{secs}</td><td>{tables}</td></tr>'
        )
    body.append(
        '<table id="plan-table"><thead><tr><th>stage</th><th>status</th><th>reason</th>'
        "<th>seconds</th><th>tables (rows)</th></tr></thead><tbody>"
        + "".join(cells)
        + "</tbody></table>"
    )
    timed = [r for r in rows if r.seconds is not None]
    if timed:
        body.append(
            svg_bars("seconds per stage", [r.name for r in timed], [r.seconds for r in timed],
                     "{:,.1f} s")
        )  # fmt: skip
    return section("Plan, stage times and row counts", body, sid="plan")


def candidates_section(run_dir: Location) -> str:
    # Aggregations of a lazy scan on the streaming engine over the two columns they need:
    # their results are a few rows, and the candidates table is never held whole.
    c = tableio.scan_polars(run_dir, "candidates").select("sources", "score")
    combos = (
        c.select(pl.col("sources").list.sort().list.join("+").alias("combo"))
        .group_by("combo")
        .len()
        .collect(engine="streaming")
        .sort("len", "combo", descending=[True, False])
        .head(12)
    )
    per_source = (
        c.select(pl.col("sources").explode())
        .group_by("sources")
        .len()
        .collect(engine="streaming")
        .sort("sources")
    )
    return section(
        "Candidate sources",
        [
            svg_bars("candidates per source", per_source["sources"].to_list(),
                     [float(x) for x in per_source["len"]], "{:,.0f}"),
            svg_bars("source overlap (sources that proposed the same item)",
                     combos["combo"].to_list(), [float(x) for x in combos["len"]], "{:,.0f}"),
            linear_histogram_of(c, "score", "fused score distribution (candidates per bin)"),
        ],
        sid="candidate-sources",
    )  # fmt: skip


def graph_section(run_dir: Location) -> str:
    nodes = tableio.read_polars(run_dir, "graph_nodes")
    return section(
        "Item-transition graph",
        [
            log_histogram(nodes["out_degree"], "out-degree distribution (nodes per bin)"),
            log_histogram(nodes["in_degree"], "in-degree distribution (nodes per bin)"),
        ],
        sid="graph",
    )


def ppr_section(manifest: dict) -> str:
    extra = manifest.get("extra", {})
    keys = ("strategy", "sources", "walks", "steps", "walk_seconds", "steps_per_second", "rows")
    rows = "".join(
        f"<tr><th>{k}</th><td>{esc(json.dumps(extra[k]))}</td></tr>" for k in keys if k in extra
    )
    return section("Personalized PageRank walks", [f"<table>{rows}</table>"], sid="ppr")


def run_sections(run_dir: Location, manifests: dict[str, dict]) -> list[str]:
    """The plan section, then one section per committed table that has a chart."""
    plan, note = read_plan(run_dir)
    out = [plan_section(manifests, plan, note)]
    if "candidates" in manifests:
        out.append(candidates_section(run_dir))
    if "graph_nodes" in manifests:
        out.append(graph_section(run_dir))
    if "item_ppr" in manifests:
        out.append(ppr_section(manifests["item_ppr"]))
    return out
