"""docs/analysis.md: every Python snippet runs, in order, against two real runs, on local
disk and copied to an S3 server (the snippets take a URI as they take a path)."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report_fixtures import chromium_or_skip, headless
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "analysis.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("analysis")
    data = tmp / "seq.txt"
    rng = random.Random(5)
    data.write_text(
        "".join(
            " ".join([f"u{u}", *(str(rng.randrange(50)) for _ in range(rng.randint(2, 12)))]) + "\n"
            for u in range(60)
        )
    )
    runs = []
    for run_id, extra in (("a", []), ("b", ["--set", "candidates.fusion=rrf"])):
        if run_id == "b":
            # b starts as a copy of a: the stages the fusion does not reach (ingest to
            # neighbors, in both passes) are then skipped as committed, as in a resumed run.
            shutil.copytree(tmp / "a", tmp / "b")
        res = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", "--input", str(data), "--out",
             str(tmp), "--run-id", run_id, "--set", "spark.master=local[2]",
             "--set", "ppr.walks_per_node=100", "--set", "llm.enabled=false", *extra],
            cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        if run_id == "b":  # the fusion changed: candidates and what reads them ran again
            assert "[neighbors] skipped" in res.stderr, res.stderr[-3000:]
            assert "[candidates] done" in res.stderr, res.stderr[-3000:]
        runs.append(tmp / run_id)
    return runs[0], runs[1]


def test_the_page_has_the_questions_people_ask():
    text = DOC.read_text()
    for question in ("Why was this item recommended", "never recommended", "two runs differ"):
        assert question in text
    assert len(snippets()) >= 5


def _copy_to_s3(run: Path, uri: str) -> str:
    from pipelines.storage import Location

    for f in sorted(p for p in run.rglob("*") if p.is_file()):
        (Location(uri) / str(f.relative_to(run))).write_bytes(f.read_bytes())
    return uri


@pytest.mark.parametrize("where", ["local", "s3"])
def test_every_snippet_runs(two_runs, capsys, where, request):
    run_a, run_b = two_runs
    if where == "s3":
        request.getfixturevalue("s3")
        run_a = _copy_to_s3(run_a, "s3://walkrank/analysis/a")
        run_b = _copy_to_s3(run_b, "s3://walkrank/analysis/b")
    scope = {"RUN": str(run_a), "RUN_B": str(run_b)}
    for i, code in enumerate(snippets()):
        try:
            exec(compile(code, f"docs/analysis.md snippet {i + 1}", "exec"), scope)
        except Exception as exc:  # name the snippet, not just the line
            raise AssertionError(f"snippet {i + 1} failed: {exc!r}\n{code}") from exc
    out = capsys.readouterr().out
    assert "top candidates of" in out and "mean top-10 overlap" in out


def test_report_html_renders_its_charts_in_headless_chromium(two_runs, tmp_path):
    browser = chromium_or_skip()
    report = two_runs[0] / "report.html"
    page = report.read_text()
    charts = page.count('class="chart"')
    # curves (2), segments (NDCG and HR per segment; all, a history and a popularity one at
    # least: 2 x 3), coverage/Gini/novelty (3), stage seconds (1), sources (3), graph (2)
    assert charts >= 17
    for heading in ("Headline: rankings vs each source vs popular", "NDCG@k and HR@k over k",
                    "Segments", "Coverage, Gini, novelty", "Plan, stage times and row counts",
                    "Candidate sources", "Item-transition graph",
                    "Personalized PageRank walks"):  # fmt: skip
        assert heading in page
    dom = headless(browser, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="headline"' in dom.stdout
    # The page's own script counts the SVG charts whose laid-out box is non-empty.
    match = re.search(r'data-charts-rendered="(\d+)"', dom.stdout)
    assert match and int(match.group(1)) == charts
