"""report.html on small hand-made metrics frames and run directories (no engine, no browser)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import polars as pl
import pytest

from pipelines.evaluation.report_html import (
    grid_table,
    metrics_sections,
    ordered_tables,
    render_report_html,
)
from pipelines.evaluation.report_svg import Series, svg_lines
from tests.report_fixtures import PLAN, eval_metrics, metrics_frame, serve_metrics, write_run


class _Cells(HTMLParser):
    """Rows of the table with a given id: (data-table, [(cell text, is best), ...])."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.depth += 1 if (self.depth or a.get("id") == self.table_id) else 0
        elif self.depth and tag == "tr" and "data-table" in a:
            self.rows.append((a["data-table"], []))
        elif self.depth and tag == "td" and self.rows:
            self._cell = ["", a.get("class") == "best"]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table" and self.depth:
            self.depth -= 1


def cells(page: str, table_id: str) -> dict[str, list[tuple[str, bool]]]:
    parser = _Cells(table_id)
    parser.feed(page)
    return dict(parser.rows)


def test_headline_highlights_the_best_value_of_each_column_ties_included():
    m = metrics_frame([
        ("rankings", "ndcg", 10, "all", 0.05, 100),
        ("candidates", "ndcg", 10, "all", 0.04, 100),
        ("candidates:ppr", "ndcg", 10, "all", 0.07, 100),  # a source beats the final table
        ("candidates:popular", "ndcg", 10, "all", 0.01, 100),
        ("rankings", "hr", 10, "all", 0.20, 100),
        ("candidates", "hr", 10, "all", 0.20, 100),  # tie: both best
        ("candidates:ppr", "hr", 10, "all", 0.15, 100),
        ("candidates:popular", "hr", 10, "all", 0.02, 100),
        ("rankings", "ndcg", 10, "hist_le5", 0.90, 10),  # other segments never enter
        *(("rankings", "mrr", 10, "all", 0.03, 100),  # every table ties: no best
          ("candidates", "mrr", 10, "all", 0.03, 100),
          ("candidates:ppr", "mrr", 10, "all", 0.03, 100),
          ("candidates:popular", "mrr", 10, "all", 0.03, 100)),
    ])  # fmt: skip
    tables = ordered_tables(m, "ndcg", 10)
    names = ["ndcg", "hr", "mrr"]
    got = cells(grid_table(m, names, tables, table_id="headline", best=names), "headline")
    assert got == {
        "rankings": [("0.0500", False), ("0.2000", True), ("0.0300", False)],
        "candidates": [("0.0400", False), ("0.2000", True), ("0.0300", False)],
        "candidates:ppr": [("0.0700", True), ("0.1500", False), ("0.0300", False)],
        "candidates:popular": [("0.0100", False), ("0.0200", False), ("0.0300", False)],
    }


def test_headline_rows_rankings_candidates_sources_best_first_popular_last():
    m = eval_metrics(ks=(10,))
    assert ordered_tables(m, "ndcg", 10) == [
        "rankings", "candidates", "candidates:ppr", "candidates:transition",
        "candidates:item_cf", "candidates:user_cf", "candidates:popular",
    ]  # fmt: skip
    page = "".join(metrics_sections(m, 10, "test"))
    rows = cells(page, "headline")
    assert list(rows) == ordered_tables(m, "ndcg", 10)
    # ndcg, hr, mrr at the one k (recall = hr: left out); rankings is best everywhere.
    assert [best for _, best in rows["rankings"]] == [True] * 3
    assert not any(best for _, best in rows["candidates:popular"])
    assert "16.0× popular (0.0050)" in page and "best single source: ppr (0.0700)" in page


def test_headline_has_a_column_per_k_and_a_missing_value_is_a_dash():
    m = eval_metrics(ks=(10, 20)).filter(
        (pl.col("table") != "candidates:user_cf") | (pl.col("k") != 20)
    )
    rows = cells("".join(metrics_sections(m, 10)), "headline")
    # ndcg, hr, mrr at 10 and 20: mrr is the same at every k for every table but user_cf,
    # which lacks it at 20, so it keeps a column per k too.
    assert len(rows["rankings"]) == 3 * 2
    assert rows["candidates:user_cf"][1] == ("-", False)  # ndcg@20 missing
    full = cells("".join(metrics_sections(eval_metrics(ks=(10, 20)), 10)), "headline")
    assert len(full["rankings"]) == 2 * 2 + 1  # mrr once


def test_recall_is_left_out_of_the_headline_only_where_it_equals_hr():
    same = "".join(metrics_sections(eval_metrics(ks=(10,)), 10))
    assert "Recall equals HR in every cell" in same and ">recall<" not in same
    m = eval_metrics(ks=(10,)).with_columns(  # two held-out items: recall differs from hr
        pl.when(pl.col("metric") == "recall").then(pl.col("value") / 2).otherwise("value")
    )
    differ = "".join(metrics_sections(m, 10))
    assert "Recall equals" not in differ and ">recall@10<" in differ
    assert len(cells(differ, "headline")["rankings"]) == 4


def test_curves_have_one_line_per_table_and_segments_one_panel_per_segment():
    m = eval_metrics(ks=(10, 20, 100))
    sections = {re.search(r'id="([^"]+)"', s).group(1): s for s in metrics_sections(m, 10)}
    assert list(sections) == ["headline-section", "curves", "segments", "label-free"]
    assert sections["curves"].count("<polyline") == 2 * 7  # NDCG and HR, 7 tables
    assert sections["curves"].count('class="chart"') == 2
    assert sections["segments"].count('class="chart"') == 2 * 6  # NDCG@10, HR@10 x 6 segments
    assert "history ≤ 5 events · 550 users" in sections["segments"]


def test_a_k_the_metrics_lack_falls_back_to_their_smallest_k():
    page = "".join(metrics_sections(eval_metrics(ks=(5, 20)), 10))
    assert "NDCG@5 by segment" in page and "NDCG@10" not in page


def test_a_single_k_draws_points_without_lines():
    svg = svg_lines("t", [10], [Series("a", [0.3], "#000"), Series("b", [None], "#111")])
    assert "<polyline" not in svg and svg.count("<circle") == 1


def test_serve_run_shows_the_label_free_metrics_instead_of_accuracy(tmp_path):
    run = write_run(tmp_path / "serve", serve_metrics(ks=(10, 20)), target="serve", tables=False)
    page = render_report_html(run, 10)
    assert 'id="serve-banner"' in page and "no labels" in page
    for absent in ('id="curves"', 'id="segments"', "NDCG@k", "users evaluated"):
        assert absent not in page
    rows = cells(page, "headline")
    assert list(rows) == ["rankings", "candidates", "candidates:ppr", "candidates:popular"]
    # users, catalog items (same at every k: one column), recommended items, coverage and Gini
    # at 10 and 20, novelty (same at every k); counts with thousands separators.
    assert [text for text, _ in rows["candidates:popular"]] == [
        "1,000", "5,000", "500", "1,000", "0.1000", "0.2000", "0.9000", "0.8000", "9.50",
    ]  # fmt: skip
    assert "target: <b>serve</b>" in page


def test_missing_plan_json_lists_the_stages_from_the_manifests(tmp_path):
    run = write_run(tmp_path / "old", eval_metrics(ks=(10,)), plan=None)
    page = render_report_html(run, 10)
    assert "no plan.json (a run made before plans were recorded)" in page
    plan = page[page.index('id="plan-table"') :]
    plan = plan[: plan.index("</table>")]
    stages = re.findall(r"<tr[^>]*><th>([a-z_]+)</th><td>([^<]*)</td>", plan)
    assert stages == [("ingest", "ran"), ("graph", "ran"), ("candidates", "ran"),
                      ("evaluate", "ran")]  # fmt: skip
    assert "21.0" in plan and "candidates&nbsp;160" in plan
    assert "plan: ingest &gt; graph &gt; candidates &gt; evaluate" in page


def test_plan_json_gives_the_order_and_the_reason_of_each_skipped_stage(tmp_path):
    run = write_run(tmp_path / "new", eval_metrics(ks=(10,)), plan=PLAN)
    page = render_report_html(run, 10)
    assert "no plan.json" not in page
    assert ('<tr class="skipped"><th>neighbors</th><td>skipped</td>'
            "<td>no item_cf/user_cf source</td>") in page  # fmt: skip
    assert "<th>ppr</th><td>planned, nothing committed</td>" in page
    assert "plan: ingest &gt; split &gt; graph &gt; ppr &gt; candidates &gt; evaluate" in page


@pytest.mark.parametrize("text", ["{", '{"stages": [{"planned": true}]}', "[]"])
def test_an_unreadable_plan_json_falls_back_to_the_manifests(tmp_path, text):
    run = write_run(tmp_path / "bad", eval_metrics(ks=(10,)), plan=None)
    (run / "plan.json").write_text(text)
    page = render_report_html(run, 10)
    assert "plan.json is unreadable" in page and "<th>evaluate</th><td>ran</td>" in page


def test_the_page_is_one_file_with_no_network(tmp_path):
    run = write_run(tmp_path / "r", eval_metrics(), plan=PLAN)
    page = render_report_html(run, 10)
    for needle in ("http://", "https://", "<link", " src=", "@import", "url("):
        assert needle not in page
    assert page.count('class="chart"') >= 2 + 12 + 3 + 1 + 3 + 2  # + plan, sources, graph


def test_a_run_without_metrics_still_renders_its_plan(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    page = render_report_html(run, 10)
    assert "No committed metrics table" in page and 'id="plan-table"' in page
