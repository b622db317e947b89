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

# llm.enabled = false: the plan leaves out summaries, llm_scores and rank.
PLANNED = [
    "ingest", "split", "graph", "ppr", "neighbors", "candidates", "fit_ranker", "rank", "evaluate",
]  # fmt: skip
# The learned ranker's fit pass: the same stages one event earlier, in <run>/fit/.
FIT_PASS = ["fit/split", "fit/graph", "fit/ppr", "fit/neighbors", "fit/candidates"]

pytestmark = pytest.mark.spark

WALKRANK = [sys.executable, "-m", "pipelines.cli"]


def _walkrank(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
    return subprocess.run(
        [*WALKRANK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _recording_java(tmp: Path) -> tuple[dict[str, str], Path]:
    """A JAVA_HOME whose `bin/java` appends its arguments to a record file and fails: Spark's
    launcher (spark-class) runs `$JAVA_HOME/bin/java` before anything else, so any attempt to
    start the JVM leaves the record, however fast or slow the machine is."""
    record = tmp / "java-started"
    java = tmp / "java-home" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho "$@" >> "{record}"\nexit 1\n')
    java.chmod(0o755)
    return {"JAVA_HOME": str(tmp / "java-home")}, record


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
        # The LLM stages are not planned: tests/test_llm_*.py cover them with a tiny model,
        # and the real one in an integration test.
        "--set",
        "llm.enabled=false",
        "--set",
        "run.progress_seconds=1",
    ]
    first = _walkrank(*args, cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    # Spark progress from the status tracker, and a one-line summary per stage.
    assert re.search(r"^\[\w+\] spark: job \d+ \[[#.]{20}\] +\d+% ", first.stderr, re.M)
    assert "plan: " + " > ".join(PLANNED) in first.stderr
    assert "plan: skip llm_scores: llm.enabled = false" in first.stderr
    assert [ln.split("]")[0][1:] for ln in first.stderr.splitlines() if "] done in " in ln] == [
        *PLANNED[:6],
        *FIT_PASS,
        *PLANNED[6:],
    ]
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
        "item_neighbors",
        "user_neighbors",
        "candidates",
        "fallback_rankings",
        "ranker_model",
        "rankings",
        "metrics",
    ):
        assert tableio.is_committed(run, table), table
    assert tableio.is_committed(run / "fit", "candidates")
    assert not tableio.is_committed(run, "llm_scores")
    assert (run / "report.md").read_text().startswith("#")
    files = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}

    second = _walkrank(*args, cwd=root)
    assert second.returncode == 0, second.stderr[-3000:]
    # Every stage, the fit pass's included, is skipped: nothing is redone.
    assert second.stderr.count("] skipped:") == len(PLANNED) + len(FIT_PASS)
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
    # caught at config load, before any engine starts, naming the setting and the path
    assert missing.returncode == 2, missing.stderr
    assert "ingest.input = " in missing.stderr and "nope.csv" in missing.stderr
    assert "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr
    no_table = _walkrank("show", str(tmp_path / "x" / "rankings"), cwd=root)
    assert no_table.returncode == 2 and "never committed" in no_table.stderr


def test_bad_values_fail_at_load_without_spark(tmp_path, sequences_file):
    root = Path(__file__).resolve().parents[1]
    java_env, java_started = _recording_java(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    bad = _walkrank(
        "run", "--input", str(sequences_file), "--out", str(out),
        "--set", "ppr.alpha=1.5", "--set", "candidates.top_n=0", cwd=root, env=java_env,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "ppr.alpha = 1.5: must be > 0 and < 1" in bad.stderr
    assert "candidates.top_n = 0: must be >= 1" in bad.stderr
    assert "spark" not in bad.stderr.lower().replace("spark.", "")  # no engine started
    assert not java_started.exists()  # the JVM was never launched
    assert list(out.iterdir()) == []

    # Control: a valid command under the same JAVA_HOME does launch the JVM (and fails
    # there), so the record above would have caught a Spark start before the config check.
    good = _walkrank(
        "run", "--input", str(sequences_file), "--format", "sequences",
        "--out", str(tmp_path / "control"), "--stages", "ingest", cwd=root, env=java_env,
    )  # fmt: skip
    assert good.returncode != 0
    assert "org.apache.spark" in java_started.read_text()


def test_run_id_cannot_escape_out(tmp_path, sequences_file):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    for run_id in ("../escape", "..", "x/../../y", "a b"):
        r = _walkrank(
            "run", "--input", str(sequences_file), "--out", str(out), "--run-id", run_id,
            "--stages", "ingest", cwd=root,
        )  # fmt: skip
        assert r.returncode == 2, (run_id, r.stderr)
        assert "not a plain name" in r.stderr
    job = subprocess.run(
        [sys.executable, "jobs/stage_job.py", "ingest", "--run-dir", str(out / ".."),
         "--input", str(sequences_file)],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert job.returncode == 2 and "not a plain name" in job.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "out"]


def test_serve_run_and_evaluate_against_new_events(tmp_path, sequences_file):
    """A serve run fits on every event and recommends each user's next one; `evaluate
    --against` scores it on the first new event of each user, checked by hand here."""
    import math

    import polars as pl

    root = Path(__file__).resolve().parents[1]
    run = _walkrank(
        "run", "--input", str(sequences_file), "--format", "sequences", "--out", str(tmp_path),
        "--run-id", "s", "--set", "spark.master=local[2]", "--set", "eval.target=serve",
        "--set", 'candidates.sources=["item_cf"]', "--set", "eval.ks=[5,10]",
        "--set", "llm.enabled=false", "--set", "rank.method=fusion", cwd=root,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "plan: ingest > split > neighbors > candidates > evaluate" in run.stderr
    d = tmp_path / "s"
    events = tableio.read_polars(d, "events")
    assert tableio.read_manifest(d, "train")["rows"] == events.height  # nothing held out
    assert tableio.read_manifest(d, "holdout")["rows"] == 0
    rankings = tableio.read_polars(d, "rankings")
    # Every user gets recommendations, and none of them is an item the user has seen.
    assert set(rankings["user_id"]) == set(events["user_id"])
    seen = events.select("user_id", "item_id").unique()
    assert rankings.join(seen, on=["user_id", "item_id"], how="semi").height == 0
    metrics = tableio.read_polars(d, "metrics").filter(pl.col("table") == "rankings")
    label_free = dict(
        zip(metrics["metric"] + "@" + metrics["k"].cast(str), metrics["value"], strict=True)
    )
    assert label_free["users@10"] == events["user_id"].n_unique()
    assert "ndcg@10" not in label_free and 0 < label_free["coverage@10"] <= 1

    # New events after the run's last one (its timestamps are sequence positions, a few
    # seconds after the epoch): two for u0 (the earlier one is the target), one each for u1..u3, one for a user
    # the run never saw. u4's event at second 1 is stale (not after the run's last event):
    # counted, not scored, though it is u4's top item. The other 56 users have no new event.
    top = {u: g.sort("rank")["item_id"].to_list() for (u,), g in rankings.group_by("user_id")}
    picks = {"u0": top["u0"][2], "u1": top["u1"][0], "u2": top["u2"][7], "u3": "nope"}
    rows = [("u0", picks["u0"], 100), ("u0", top["u0"][0], 101), ("u4", top["u4"][0], 1)]
    rows += [(u, picks[u], 100) for u in ("u1", "u2", "u3")] + [("newcomer", "1", 100)]
    new = tmp_path / "new.csv"
    new.write_text("user_id,item_id,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    ev = _walkrank(
        "evaluate", str(d), "--against", str(new), "--format", "csv", "--k", "5,10", cwd=root,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "4 users scored" in ev.stdout and "1 new users without rankings" in ev.stdout
    end = events["ts"].max().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"1 new events at or before the run's last event ({end}) are stale" in ev.stdout
    served = tableio.read_polars(d, "served_metrics").filter(pl.col("segment") == "all")
    got = {(m, k): v for m, k, v in served.select("metric", "k", "value").iter_rows()}
    # Target ranks: u0 3, u1 1, u2 8, u3 not recommended.
    ndcg = lambda r, k: 1 / math.log2(r + 1) if r <= k else 0.0  # noqa: E731
    for k in (5, 10):
        assert got[("ndcg", k)] == pytest.approx(sum(ndcg(r, k) for r in (3, 1, 8)) / 4)
        assert got[("hr", k)] == pytest.approx(sum(r <= k for r in (3, 1, 8)) / 4)
    counts = tableio.read_manifest(d, "served_metrics")["extra"]["counts"]
    assert counts["users_scored"] == 4 and counts["users_without_new_events"] == 56
    assert counts["stale_events"] == 1
