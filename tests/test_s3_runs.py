"""`walkrank run` with its input, tables and run on S3 (a real server: SeaweedFS), in a real
process whose environment holds nothing but the AWS variables a user sets:

- every table of the default learned pipeline commits on the server and nothing lands in
  the working directory; the tables equal a local run's by content; `walkrank evaluate`,
  `walkrank show` and Polars read them;
- a data file deleted under a committed table: the next run fails with one line naming the
  table and the file, and --force repairs it;
- killed (SIGKILL) at a Spark-written table, at the ranker model and at a driver-written
  table, each run leaves nothing visible as committed there, and the resumed run ends equal
  to the clean one by content (the model text included)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines import tableio
from pipelines.faults import FAULT_ENV
from pipelines.storage import Location
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [
    "spark.master=local[2]", "ppr.walks_per_node=200", "llm.enabled=false",
    # A model that is fitted and kept on 60 users: the model folder is part of the run.
    "rank.min_fit_users=10", "rank.min_gain=-1",
]  # fmt: skip
TABLES = [
    "events", "items", "quarantine", "train", "holdout", "graph_nodes", "graph_edges",
    "item_ppr", "item_neighbors", "user_neighbors", "candidates", "fallback_rankings",
    "ranker_model", "rankings", "metrics",
]  # fmt: skip


def _env(server, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != FAULT_ENV}
    return {**keep, **server.env, "SPARK_LOCAL_IP": "127.0.0.1", **extra}


def _walkrank(server, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=_env(server, **env),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def _run_args(input_uri: str, out: str, run_id: str) -> list[str]:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    return ["run", "--input", input_uri, "--format", "sequences", "--out", out,
            "--run-id", run_id, *sets]  # fmt: skip


def contents(run: Location | Path) -> dict[str, pl.DataFrame]:
    """Every committed table of a run, its rows sorted by every non-list column."""
    out = {}
    run = Location(run)
    for e in run.list():
        if e.is_dir and not e.rel.startswith((".", "_")) and tableio.is_committed(run, e.rel):
            df = tableio.read_polars(run, e.rel)
            keys = [c for c, t in df.schema.items() if not isinstance(t, pl.List)]
            out[e.rel] = df.sort(keys, nulls_last=True)
    return out


@pytest.fixture(scope="module")
def runs(s3, tmp_path_factory):  # noqa: F811
    """The same input run locally and on S3 (the S3 run from an empty working directory)."""
    base = tmp_path_factory.mktemp("s3runs")
    rng = random.Random(3)
    lines = []
    for u in range(60):
        n, start = rng.randint(2, 12), rng.randrange(40)
        lines.append(" ".join([f"u{u}", *[str((start + k * rng.randint(1, 3)) % 50)
                                          for k in range(n)]]))  # fmt: skip
    local_input = base / "seq.txt"
    local_input.write_text("\n".join(lines) + "\n")
    (Location("s3://walkrank/in") / "seq.txt").write_bytes(local_input.read_bytes())
    cwd = base / "cwd"
    cwd.mkdir()
    local = _walkrank(s3, *_run_args(str(local_input), str(base / "out"), "t"), cwd=cwd)
    assert local.returncode == 0, local.stderr[-3000:]
    remote = _walkrank(s3, *_run_args("s3://walkrank/in/seq.txt", "s3://walkrank/runs", "t"),
                       cwd=cwd)  # fmt: skip
    assert remote.returncode == 0, remote.stderr[-3000:]
    return base, cwd, remote


def test_a_run_on_s3_equals_the_local_run_and_reads_back(s3, runs):  # noqa: F811
    base, cwd, remote = runs
    assert list(cwd.iterdir()) == []  # nothing under the working directory
    run = Location("s3://walkrank/runs/t")
    got, want = contents(run), contents(base / "out" / "t")
    assert sorted(got) == sorted(want) and set(TABLES) <= set(got)
    for name in want:
        if name != "quarantine":  # its `source` column is the input's path
            assert got[name].equals(want[name]), name
    assert tableio.is_committed(run / "fit", "candidates")
    assert (run / "models" / "ranker" / "meta.json").is_file()
    from pipelines.ranker.artifact import load_model

    assert load_model(run / "models" / "ranker").text == (
        load_model(base / "out" / "t" / "models" / "ranker").text
    )
    # Nothing of the credentials lands in the run's files.
    secret = s3.env["AWS_SECRET_ACCESS_KEY"]
    texts = [(run / "config.toml").read_text(), remote.stderr]
    texts += [(run / e.rel).read_text() for e in run.list(recursive=True)
              if e.rel.endswith(".json")]  # fmt: skip
    assert not [t for t in texts if secret in t or s3.env["AWS_ACCESS_KEY_ID"] in t]

    ev = _walkrank(s3, "evaluate", "s3://walkrank/runs/t", "--k", "10", cwd=cwd)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "ndcg" in ev.stdout and "rankings" in ev.stdout
    show = _walkrank(s3, "show", "s3a://walkrank/runs/t/rankings", cwd=cwd)
    assert show.returncode == 0 and '"table": "rankings"' in show.stdout, show.stderr[-2000:]
    # Polars straight on the manifest's files, with the same environment alone.
    m = tableio.read_manifest(run, "rankings")
    uris = [f"s3://walkrank/runs/t/rankings/{f['path']}" for f in m["files"]]
    assert pl.scan_parquet(uris).select(pl.len()).collect().item() == m["rows"]
    assert list(cwd.iterdir()) == []


def test_a_damaged_table_on_s3_fails_the_run_in_one_line_and_force_repairs_it(s3, runs):  # noqa: F811
    base, cwd, _ = runs
    run = Location("s3://walkrank/runs/t")
    m = tableio.read_manifest(run, "candidates")
    victim = run / "candidates" / m["files"][0]["path"]
    victim.delete()
    args = _run_args("s3://walkrank/in/seq.txt", "s3://walkrank/runs", "t")
    broken = _walkrank(s3, *args, cwd=cwd)
    assert broken.returncode != 0
    assert "Traceback" not in broken.stderr
    line = next(ln for ln in broken.stderr.splitlines() if "is damaged" in ln)
    assert "table 'candidates'" in line and victim.name in line
    fixed = _walkrank(s3, *args, "--stages", "candidates", "--force", cwd=cwd)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert tableio.verify_table(run, "candidates")["rows"] == m["rows"]
    again = _walkrank(s3, *args, cwd=cwd)
    assert again.returncode == 0, again.stderr[-3000:]


def test_killed_at_every_kind_of_commit_on_s3_then_resumed(s3, runs):  # noqa: F811
    base, cwd, _ = runs
    run = Location("s3://walkrank/faults/f")
    args = _run_args("s3://walkrank/in/seq.txt", "s3://walkrank/faults", "f")
    # A Spark-written table, the ranker model (its meta.json commits it), a table the driver
    # writes (metrics, from Polars): each kill comes before the commit, resumed in turn.
    for point, visible in (
        ("train", lambda: tableio.is_committed(run, "train")),
        ("models/ranker", lambda: (run / "models" / "ranker" / "meta.json").exists()),
        ("metrics", lambda: tableio.is_committed(run, "metrics")),
    ):
        killed = _walkrank(s3, *args, cwd=cwd, **{FAULT_ENV: f"{point}:kill"})
        assert killed.returncode == -9, killed.stderr[-3000:]
        assert f"[fault] kill at {point}:" in killed.stderr
        assert not visible(), point
        # A second writer would be refused now only until the dead writer's lease is seen
        # dead: same host, its pid gone; the resumed run takes it over.
    final = _walkrank(s3, *args, cwd=cwd)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "] skipped:" in final.stderr  # resumed: the committed stages are not redone
    got, want = contents(run), contents(Location("s3://walkrank/runs/t"))
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].equals(want[name]), name
    from pipelines.ranker.artifact import load_model

    assert load_model(run / "models" / "ranker").text == (
        load_model(Location("s3://walkrank/runs/t") / "models" / "ranker").text
    )
    # Leftovers of the killed writes were cleaned by the runs that followed.
    for name in ("train", "metrics"):
        m = tableio.read_manifest(run, name)
        files = {e.rel.split("/")[0] for e in (run / name).list(recursive=True) if not e.is_dir}
        assert files == {tableio.MANIFEST, m["version"]}
    assert [e.rel for e in (run / "models" / "ranker").list()] == sorted(
        ["meta.json", load_model(run / "models" / "ranker").meta["model_file"]]
    )
