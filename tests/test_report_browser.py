"""report.html in headless Chromium: the headline table is in the rendered DOM, every chart
has a laid-out box, and a screenshot of the page comes out (hand-made runs, no engine)."""

from __future__ import annotations

import re

import pytest

from pipelines.evaluation.report_html import render_report_html
from tests.report_fixtures import (
    PLAN,
    chromium_or_skip,
    eval_metrics,
    headless,
    serve_metrics,
    write_run,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["evaluation", "serve"])
def test_headline_table_renders_and_the_page_screenshots(tmp_path, kind):
    browser = chromium_or_skip()
    if kind == "serve":
        run = write_run(tmp_path / kind, serve_metrics(), target="serve", plan=PLAN)
    else:
        run = write_run(tmp_path / kind, eval_metrics(), plan=PLAN)
    report = run / "report.html"
    report.write_text(render_report_html(run, 10))
    charts = report.read_text().count('class="chart"')

    dom = headless(browser, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    headline = re.search(r'<table id="headline".*?</table>', dom.stdout, flags=re.S)
    assert headline, "no headline table in the rendered DOM"
    rows = re.findall(r'<tr[^>]*data-table="([^"]+)"', headline.group(0))
    assert rows[0] == "rankings" and rows[-1] == "candidates:popular"
    assert ("serve-banner" in dom.stdout) == (kind == "serve")
    # The page's own script counts the SVG charts whose laid-out box is non-empty.
    rendered = re.search(r'data-charts-rendered="(\d+)"', dom.stdout)
    assert rendered and int(rendered.group(1)) == charts > 0

    shot = tmp_path / f"report-{kind}.png"
    res = headless(browser, tmp_path / "profile", "--window-size=1200,1600",
                   f"--screenshot={shot}", report.as_uri())  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000  # a blank page is ~5 kB
