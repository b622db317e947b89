"""The `walkrank` CLI as users run it, in a real process: run, evaluate, show, re-run."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import tableio
from pipelines.stages import DEFAULT_STAGES

pytestmark = pytest.mark.spark

WALKRANK = [sys.executable, "-m", "pipelines.cli"]


def _walkrank(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run(
        [*WALKRANK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def sequences_file(tmp_path_factory) -> Path:
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("data") / "seq.txt"
    lines = []
    for u in range(60):
        n = rng.randint(2, 12)
        start = rng.randrange(40)
        lines.append(
            " ".join([f"u{u}", *[str((start + k * rng.randint(1, 3)) % 50) for k in range(n)]])
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_run_evaluate_show_and_rerun(tmp_path, sequences_file):
    root = Path(__file__).resolve().parents[1]
    args = [
        "run",
        "--input",
        str(sequences_file),
        "--format",
        "sequences",
        "--out",
        str(tmp_path),
        "--run-id",
        "t",
        "--set",
        "spark.master=local[2]",
        "--set",
        "eval.ks=[5,10]",
        "--set",
        "ppr.walks_per_node=200",
        # The LLM stages run (writing empty tables) but load no model: tests/test_llm_*.py
        # cover them with a tiny model, and the real one in an integration test.
        "--set",
        "llm.enabled=false",
        "--set",
        "run.progress_seconds=1",
    ]
    first = _walkrank(*args, cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    # Spark progress from the status tracker, and a one-line summary per stage.
    assert re.search(r"^\[\w+\] spark: job \d+ \[[#.]{20}\] +\d+% ", first.stderr, re.M)
    assert all(f"[{name}] done in " in first.stderr for name in DEFAULT_STAGES)
    run = tmp_path / "t"
    for table in (
        "events",
        "items",
        "quarantine",
        "train",
        "holdout",
        "graph_nodes",
        "graph_edges",
        "item_ppr",
        "candidates",
        "user_summaries",
        "llm_scores",
        "rankings",
        "metrics",
    ):
        assert tableio.is_committed(run, table), table
    assert (run / "report.md").read_text().startswith("#")
    files = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}

    second = _walkrank(*args, cwd=root)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("] skipped:") == len(DEFAULT_STAGES)
    after = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert after == files

    ev = _walkrank("evaluate", str(run), "--k", "5,10", cwd=root)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "ndcg" in ev.stdout and "candidates" in ev.stdout and "rankings" in ev.stdout

    show = _walkrank("show", str(run / "rankings"), cwd=root)
    assert show.returncode == 0 and '"table": "rankings"' in show.stdout


def test_errors_are_one_line_with_a_hint(tmp_path, sequences_file):
    root = Path(__file__).resolve().parents[1]
    bad_key = _walkrank(
        "run",
        "--input",
        str(sequences_file),
        "--out",
        str(tmp_path),
        "--set",
        "ppr.walks_per_nod=3",
        cwd=root,
    )
    assert bad_key.returncode == 2
    assert "unknown config key 'ppr.walks_per_nod'" in bad_key.stderr
    assert "ppr.walks_per_node" in bad_key.stderr and "Traceback" not in bad_key.stderr
    missing = _walkrank(
        "run", "--input", str(tmp_path / "nope.csv"), "--out", str(tmp_path), cwd=root
    )
    assert missing.returncode == 2 and "input not found" in missing.stderr
    no_table = _walkrank("show", str(tmp_path / "x" / "rankings"), cwd=root)
    assert no_table.returncode == 2 and "never committed" in no_table.stderr
