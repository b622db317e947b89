"""`walkrank run` over a run with a damaged committed table, as users run it: the same command
again fails with one line naming the table and what is wrong (no traceback, the stage that
wrote it not skipped), and the same command with --force rebuilds the table to the content of
the undamaged run. Three kinds of damage, each on a copy of one real run (ingest, split):
a manifest that is not JSON, a data file deleted, a data file cut short."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import tableio
from tests.table_damage import delete_a_data_file, sorted_content, truncate_a_data_file

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["events", "items", "quarantine", "train", "holdout"]


def _walkrank(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("WALKRANK_DEBUG", None)  # it turns the one-line errors back into tracebacks
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_args(events: Path, out: Path) -> list[str]:
    return [
        "run", "--input", str(events), "--format", "sequences", "--out", str(out),
        "--run-id", "t", "--stages", "ingest,split", "--set", "spark.master=local[2]",
        "--set", "llm.enabled=false",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[Path, Path]:
    """(the events file, the run committed from it undamaged)."""
    data = tmp_path_factory.mktemp("data")
    rng = random.Random(5)
    lines = []
    for u in range(40):
        items = [str(rng.randrange(30)) for _ in range(rng.randint(3, 10))]
        lines.append(" ".join([f"u{u}", *items]))
    events = data / "seq.txt"
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("clean")
    done = _walkrank(*_run_args(events, out))
    assert done.returncode == 0, done.stderr[-3000:]
    for table in TABLES:
        tableio.verify_table(out / "t", table)
    # Spark wrote several files per table: one of them is what gets damaged.
    assert len(tableio.read_manifest(out / "t", "train")["files"]) > 1
    return events, out / "t"


def _manifest_not_json(run: Path, table: str) -> str:
    (run / table / tableio.MANIFEST).write_text('{"table": "' + table + '", "files": [{"pa')
    return "its _manifest.json does not parse"


# (the table damaged, the stage that writes it, the damage)
CASES = {
    "manifest not JSON": ("events", "ingest", _manifest_not_json),
    "data file deleted": ("train", "split", delete_a_data_file),
    "data file truncated": ("holdout", "split", truncate_a_data_file),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_table_fails_the_run_in_one_line_and_force_rebuilds_it(clean_run, tmp_path, case):
    events, clean = clean_run
    table, writer, damage = CASES[case]
    out = tmp_path / "out"
    shutil.copytree(clean, out / "t", symlinks=True)
    what = damage(out / "t", table)
    args = _run_args(events, out)

    again = _walkrank(*args)
    assert again.returncode != 0
    assert "Traceback" not in again.stderr, again.stderr[-3000:]
    naming = [ln for ln in again.stderr.splitlines() if f"table '{table}'" in ln]
    assert len(naming) == 1, again.stderr[-3000:]
    assert naming[0].startswith(f"error: table '{table}' in {out / 't'} is damaged: ")
    assert what in naming[0]
    assert f"[{writer}] skipped" not in again.stderr  # the stage that wrote it: not skipped
    assert f"[{writer}] running" not in again.stderr  # nor run without --force

    forced = _walkrank(*args, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert f"[{writer}] wrote {table}: " in forced.stderr
    for name in TABLES:
        assert sorted_content(out / "t", name).equals(sorted_content(clean, name)), name
    tableio.verify_table(out / "t", table)
