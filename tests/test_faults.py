"""Faults with real processes: kill -9 mid-stage, a flaky Spark task, a full disk, two writers.

Invariants checked: a table directory without a manifest is never visible in a run; a re-run
after a kill finishes without redoing committed stages, and its tables equal those of an
uninterrupted run; a failed write leaves the committed tables as they were.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.synthetic_logs import LogModel, generate_logs

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
STAGES = "ingest,split,graph,ppr,candidates"
SETTINGS = ["--set", "spark.master=local[2]", "--set", "ppr.walks_per_node=300"]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "log"
    generate_logs(20_000, 11, out, LogModel(n_items=400), progress=False)
    return out


def _cmd(log_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--input",
        str(log_dir),
        "--out",
        str(out),
        "--run-id",
        "r",
        "--stages",
        STAGES,
        *SETTINGS,
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}


class Watch:
    """Polls a run directory while a run goes on: any visible table without a manifest is a
    violation (the commit protocol says it never happens)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.violations, self.stop = run_dir, [], threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            if self.run_dir.exists():
                for d in self.run_dir.iterdir():
                    if (
                        d.is_dir()
                        and not d.name.startswith(".")
                        and not tableio.is_committed(self.run_dir, d.name)
                    ):
                        # A rename is atomic; re-check once so a swap in flight is not flagged.
                        time.sleep(0.01)
                        if d.exists() and not tableio.is_committed(self.run_dir, d.name):
                            self.violations.append(d.name)
            time.sleep(0.02)

    def close(self) -> list[str]:
        self.stop.set()
        self.thread.join()
        return self.violations


def run_and_kill(cmd: list[str], trigger: str, delay: float) -> str:
    """Start the CLI in its own process group; SIGKILL the whole group (driver and JVM)
    `delay` seconds after `trigger` appears on stderr. Returns the stderr read so far."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    seen: list[str] = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if trigger in line:
                time.sleep(delay)
                os.killpg(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"the run ended before {trigger!r}:\n{''.join(seen)[-3000:]}")
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return "".join(seen)


def table_frames(run_dir: Path, names: list[str]) -> dict[str, pl.DataFrame]:
    out = {}
    for name in names:
        df = tableio.read_polars(run_dir, name)
        keys = [c for c, t in df.schema.items() if not isinstance(t, pl.List)]
        out[name] = df.sort(keys)
    return out


TABLES = [
    "events",
    "items",
    "quarantine",
    "train",
    "holdout",
    "graph_nodes",
    "graph_edges",
    "item_ppr",
    "candidates",
    "rankings",
]


def test_kill_9_during_graph_ppr_candidates_then_resume(log_dir, tmp_path):
    ref = subprocess.run(
        _cmd(log_dir, tmp_path / "ref"), cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "killed"
    run_dir = out / "r"
    watch = Watch(run_dir)
    try:
        # (stage killed, log line after which the kill comes, delay, stages skipped by then):
        # graph right after it starts, ppr while it writes item_ppr, candidates mid-way.
        for stage, trigger, delay, skipped in (
            ("graph", "[graph] window=", 0.3, []),
            ("ppr", " walks, ", 0.2, ["ingest", "split"]),
            ("candidates", "[candidates] running", 2.0, ["ingest", "split", "graph"]),
        ):
            log = run_and_kill(_cmd(log_dir, out), trigger, delay)
            for done in skipped:
                assert f"[{done}] skipped" in log, log[-2000:]
            assert f"[{stage}] done" not in log
            assert not tableio.is_committed(run_dir, "rankings")
        final = subprocess.run(
            _cmd(log_dir, out), cwd=ROOT, env=_env(), capture_output=True, text=True
        )
    finally:
        violations = watch.close()
    assert final.returncode == 0, final.stderr[-3000:]
    assert violations == []
    # Finished work is not redone: the last run starts at the stage that was killed.
    for stage in ("ingest", "split", "graph", "ppr"):
        assert f"[{stage}] skipped" in final.stderr
    assert "[candidates] running" in final.stderr
    assert not [p for p in run_dir.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    got, want = table_frames(run_dir, TABLES), table_frames(tmp_path / "ref" / "r", TABLES)
    for name in TABLES:
        # Float sums may differ in the last bits with the order partial aggregates arrive in.
        assert_frame_equal(got[name], want[name], check_exact=False, rel_tol=1e-9)
        assert (
            tableio.read_manifest(run_dir, name)["fingerprint"]
            == tableio.read_manifest(tmp_path / "ref" / "r", name)["fingerprint"]
        )


def test_two_writers_on_one_run_id(log_dir, tmp_path):
    first = subprocess.Popen(
        _cmd(log_dir, tmp_path), cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        for line in first.stderr:
            if "[ingest] running" in line:
                break
        second = subprocess.run(
            _cmd(log_dir, tmp_path), cwd=ROOT, env=_env(), capture_output=True, text=True
        )
        assert second.returncode == 2
        assert "being written by another process" in second.stderr
        assert "Traceback" not in second.stderr
        rest = first.stderr.read()
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, rest[-3000:]
    assert tableio.is_committed(tmp_path / "r", "candidates")


FLAKY_JOB = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, pyarrow as pa
    from pyspark import TaskContext
    from pipelines.config import PprConfig, SparkConfig
    import pyarrow.parquet as pq
    from pipelines.ppr.broadcast import (
        COUNTS_SCHEMA, _file_writer, _kernel, _prepare, ppr_broadcast
    )
    from pipelines.spark_session import get_spark

    marks = Path(sys.argv[1])
    # local[2,3]: two cores, a task may fail 3 times before the job fails.
    spark = get_spark(SparkConfig(master="local[2,3]", shuffle_partitions=2))
    rng = np.random.default_rng(4)
    src = rng.integers(0, 60, 600).astype(np.int32)
    dst = rng.integers(0, 60, 600).astype(np.int32)
    keep = src != dst
    pairs = sorted(set(zip(src[keep].tolist(), dst[keep].tolist())))
    s = np.array([p[0] for p in pairs], np.int32)
    d = np.array([p[1] for p in pairs], np.int32)
    prob = np.ones(len(pairs)) / np.bincount(s, minlength=60)[s]
    edges = pa.table({"src": s, "dst": d, "prob": prob})
    cfg = PprConfig(walks_per_node=200, top_k=10, batch_seeds=8)

    def flaky(fn, kind):
        def run(batches):
            ctx = TaskContext.get()
            done = list(fn(batches))  # this task's work ran; now the task dies, twice
            if ctx.attemptNumber() < 2:
                (marks / f"{kind}-p{ctx.partitionId()}-a{ctx.attemptNumber()}").touch()
                raise RuntimeError("injected task failure")
            yield from done
        return run

    sources = np.unique(s)
    clean, _ = ppr_broadcast(spark, edges, 60, sources, cfg, seed=7)
    again, _ = ppr_broadcast(spark, edges, 60, sources, cfg, seed=7)
    flaky_df = again.mapInArrow(flaky(lambda b: b, "rows"), again.schema)
    rows = lambda df: sorted(tuple(r) for r in df.collect())
    # The stage's path: each task writes its Parquet file, then fails after the rename.
    out_dir = marks.parent / "files"
    out_dir.mkdir()
    work, bc, _ = _prepare(spark, edges, 60, sources, cfg)
    writer = flaky(_file_writer(_kernel(bc, cfg, 7), str(out_dir)), "files")
    work.mapInArrow(writer, COUNTS_SCHEMA).collect()
    written = sorted(out_dir.iterdir())
    files = [tuple(r.values()) for f in written for r in pq.read_table(f).to_pylist()]
    print(json.dumps({"clean": rows(clean), "flaky": rows(flaky_df), "files": files,
                      "names": [f.name for f in written]}))
    """
)


def test_a_task_that_fails_twice_is_retried_with_the_same_result(tmp_path):
    import json

    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY_JOB)
    res = subprocess.run(
        [sys.executable, str(script), str(marks)],
        cwd=ROOT,
        env={**_env(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for kind in ("rows", "files"):
        failed = sorted(p.name for p in marks.iterdir() if p.name.startswith(kind))
        # Every partition failed on attempts 0 and 1, then succeeded on attempt 2.
        parts = {m.rsplit("-", 1)[0] for m in failed}
        assert parts and failed == sorted(f"{p}-a{a}" for p in parts for a in (0, 1))
    assert len(out["flaky"]) > 0 and out["flaky"] == out["clean"]
    # Files written by failed attempts were replaced whole: one file per partition, no temp
    # files, and in name order exactly the rows of the clean run, sorted by (src, rank).
    assert all(n.startswith("part-") and n.endswith(".parquet") for n in out["names"])
    by_src_rank = sorted(map(tuple, out["clean"]), key=lambda r: (r[0], r[3]))
    assert [tuple(r) for r in out["files"]] == by_src_rank


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return res.returncode == 0


def test_full_disk_is_a_clear_error_and_keeps_the_committed_run(log_dir, tmp_path):
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "64m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        cmd = [*_cmd(log_dir, mnt, "--set", "ppr.walks_per_node=50")]
        cmd[cmd.index("--stages") + 1] = "ingest,split,graph"
        first = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr[-3000:]
        run_dir = mnt / "r"
        before = {
            p.relative_to(run_dir): p.read_bytes()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in (".lock", "config.toml")
        }
        # Fill the filesystem, leaving a few KiB: the next table cannot be written.
        filler = mnt / "filler"
        with filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass
        try:
            with filler.open("ab") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:
            pass
        again = subprocess.run(
            [*cmd, "--force"], cwd=ROOT, env=_env(), capture_output=True, text=True
        )
        assert again.returncode != 0
        assert "no space left on the device" in again.stderr.lower(), again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        filler.unlink()
        after = {
            p.relative_to(run_dir): p.read_bytes()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file()
            and p.name not in (".lock", "config.toml")
            and not p.name.startswith(".")
            and not any(part.startswith(".") for part in p.relative_to(run_dir).parts)
        }
        assert after == before
        for name in ("events", "train", "graph_edges"):
            assert tableio.is_committed(run_dir, name)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
