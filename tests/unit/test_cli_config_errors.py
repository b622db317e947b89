"""The real `walkrank` command refuses a bad config before any stage runs: one problem line
naming the key, no traceback, nothing written under --out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _walkrank(*args: str) -> subprocess.CompletedProcess:
    # A broken check would start the whole pipeline: the timeout ends that as a failure.
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    rows = [f"u{u},i{(u + t) % 7},{1_700_000_000 + 60 * t}" for u in range(5) for t in range(6)]
    path.write_text("user_id,item_id,ts\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "setting, line",
    [
        ("rank.min_gain=nan", "  - rank.min_gain = nan: must be a finite number"),
        ("llm.model=[1,2]", "  - config key 'llm.model': cannot use [1, 2] as str"),
        ("rank.model=/no/such/ranker", "  - rank.model = '/no/such/ranker': no such folder"),
    ],
)
def test_run_with_a_bad_setting_fails_before_any_stage(tmp_path, events, setting, line):
    out = tmp_path / "runs"
    res = _walkrank(
        "run", "--input", str(events), "--out", str(out), "--run-id", "r", "--set", setting
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("error: invalid config (1 problem):\n")
    problems = [ln for ln in res.stderr.splitlines() if ln.startswith("  - ")]
    assert [p.split(";")[0] for p in problems] == [line]
    # No run folder, so no stage ran and no table was committed; nothing under --out at all.
    assert not out.exists()
    assert res.stdout == ""
