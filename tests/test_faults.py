"""Faults at deterministic points, with real processes and engines: the fault matrix.

`WALKRANK_FAULT=<point>:<kind>` (pipelines/faults.py) fires right after a table's data files
are in its new version folder (`<table>/v-<id>/`) and before the manifest that names them, or
after the ranker's model file and before the meta.json that commits it. The run is the default
configuration (the learned ranker, its fit pass, the guard; only sizes are small): for a table
of every stage, the fit pass's included, the model folder and each kind:

- kill: a real `walkrank run` process SIGKILLs itself there (no handler, no cleanup);
- raise / enospc: the runner, in this process, gets InjectedFaultError / OSError(ENOSPC),
  which must come out as the DiskFullError line naming the table.

One run directory per kind goes through every point in pipeline order: each run resumes the
previous point's stage and stops at the next point. Checked at each point: the fault landed
where it says (data on disk, no manifest or marker), no reader sees the uncommitted write,
every table committed before and not rewritten by the run is byte-identical afterwards; and
once the stage is committed by a later run, its tables equal one clean run's by content
(sorted rows, exact, floats included), not fingerprints. A last run without a fault ends the
chain; then every table of the run equals the clean run's and the model file is byte-identical.
The cells are printed, and written into benchmarks/RESULTS.md's fault matrix only when
WALKRANK_FAULT_MATRIX names that file (a test run writes no tracked file by itself).

The LLM stages are not in the default plan; their shards' faults are tests/test_llm_stages.py's.

Also here: one real full disk (a small tmpfs, filled during a table write), a flaky Spark
task, and two writers on one run id.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from pipelines import api, tableio
from pipelines.config import Config, load_config
from pipelines.errors import DiskFullError, InjectedFaultError
from pipelines.faults import FAULT_ENV, KINDS
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from pipelines.synthetic_logs import LogModel, generate_logs

pytestmark = [pytest.mark.spark, pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
# The file to write the matrix into (between its markers): benchmarks/RESULTS.md to update it.
MATRIX_FILE = os.environ.get("WALKRANK_FAULT_MATRIX", "")
IN_CI = bool(os.environ.get("CI"))

MODEL_POINT = "models/ranker"  # the ranker's folder: its model file, then meta.json
# (stage, fault point) in pipeline order: the last table each stage writes (the ones before it
# are committed by then, so the stage must notice it is incomplete); fit/<stage>: the fit pass.
POINTS = [
    ("ingest", "events"),
    ("split", "train"),
    ("graph", "graph_nodes"),
    ("ppr", "item_ppr"),
    ("neighbors", "user_neighbors"),
    ("candidates", "candidates/rankings"),
    ("fit/split", "fit/train"),
    ("fit/graph", "fit/graph_nodes"),
    ("fit/ppr", "fit/item_ppr"),
    ("fit/neighbors", "fit/user_neighbors"),
    ("fit/candidates", "fit/candidates/rankings"),
    ("fit_ranker", "models/ranker"),
    ("fit_ranker", "ranker_model"),
    ("rank", "rank/rankings"),
    ("evaluate", "metrics"),
]
LOG_EVENTS, LOG_ITEMS = 3000, 150
MATRIX: dict[tuple[str, str], str] = {}
SECONDS: dict[str, float] = {}


def _settings(data: Path) -> list[str]:
    """The default configuration on the small log: engine sizes, and the guard's thresholds
    lowered so that this log's 26 labelled fit users keep their ranker (both of the guard's
    branches are tests/unit/test_ranker_guard.py's and tests/test_ranker.py's)."""
    return [
        f"ingest.input={json.dumps(str(data))}",
        "spark.master='local[2]'",
        "spark.shuffle_partitions=4",  # the session's (conftest): in-process runs keep it
        "spark.log_level='ERROR'",
        "run.progress_seconds=0",
        "rank.min_fit_users=5",
        "rank.min_gain=-1",
    ]


def planned(cfg: Config) -> list:
    """The stages the CLI's plan runs (what the kill cells run through `walkrank run`): every
    in-process run runs the same ones, so every run commits the same tables."""
    return api.plan(cfg).stages


def log_order(cfg: Config) -> list[str]:
    """The plan's stages in the order the log names them: a nested run's ('fit/split', ...)
    before the stage that reads it."""
    plan, out = api.plan(cfg), []
    for name in plan.names:
        if name in plan.nested:
            nested = plan.nested[name]
            out += [f"{nested.spec.folder}/{n}" for n in nested.plan.names]
        out.append(name)
    return out


def _scoped(stage: str) -> tuple[str, str]:
    """'fit/split' -> ('fit/', 'split'); 'split' -> ('', 'split')."""
    folder, _, name = stage.rpartition("/")
    return (f"{folder}/" if folder else ""), name


@dataclass
class World:
    base: Path
    settings: list[str]
    cfg: Config
    clean: dict[str, pl.DataFrame]
    model: bytes  # the clean run's model file


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    return {**env, "SPARK_LOCAL_IP": "127.0.0.1", "HF_HUB_OFFLINE": "1", **extra}


def _tables(run: Path) -> list[tuple[str, Path, str]]:
    """(key, folder, name) of every committed table of a run and of its fit pass ('fit/x')."""
    out = []
    for prefix, folder in (("", run), ("fit/", run / "fit")):
        for d in sorted(folder.iterdir()) if folder.exists() else []:
            if not d.name.startswith((".", "_")) and tableio.is_committed(folder, d.name):
                out.append((f"{prefix}{d.name}", folder, d.name))
    return out


def contents(run: Path) -> dict[str, pl.DataFrame]:
    """Every committed table of a run (its fit pass's as fit/<table>), its rows sorted by
    every non-list column."""
    out = {}
    for key, folder, name in _tables(run):
        df = tableio.read_polars(folder, name)
        keys = [c for c, t in df.schema.items() if not isinstance(t, pl.List)]
        out[key] = df.sort(keys, nulls_last=True)
    return out


def model_bytes(run: Path) -> bytes:
    """The committed model file (the one meta.json names) of a run."""
    folder = run / "models" / "ranker"
    return (folder / json.loads((folder / "meta.json").read_text())["model_file"]).read_bytes()


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    data = base / "log"
    generate_logs(LOG_EVENTS, 11, data, LogModel(n_items=LOG_ITEMS), progress=False)
    settings = _settings(data)
    cfg = load_config(None, settings)
    run_stages(base / "clean", cfg, planned(cfg))
    # The guard keeps this log's ranker: the matrix goes through the model folder's commit.
    assert tableio.read_manifest(base / "clean", "ranker_model")["extra"]["fitted"] is True
    yield World(base, settings, cfg, contents(base / "clean"), model_bytes(base / "clean"))
    _write_matrix()


def _cli(world: World, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--out", str(out), "--run-id", "r"]
    for s in world.settings:
        cmd += ["--set", s]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        # The JVM and Ray processes of a killed driver go with its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _committed_files(run: Path) -> dict[str, dict[str, bytes]]:
    """{table: {file: bytes}} of every committed table (the fit pass's as fit/<table>), and
    the model folder's files as 'models/ranker'."""
    out = {}
    for key, folder, name in _tables(run):
        d = folder / name
        out[key] = {
            str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
        }
    model = run / "models" / "ranker"
    if model.is_dir():
        out[MODEL_POINT] = {p.name: p.read_bytes() for p in sorted(model.iterdir())}
    return out


def _outputs_checked(stage: str) -> list[str]:
    """A stage's outputs that no later stage of its run rewrites (rankings: candidates, then
    rank), as fit/<table> for the fit pass's."""
    prefix, name = _scoped(stage)
    names = list(STAGES)
    later = {o for s in names[names.index(name) + 1 :] for o in STAGES[s].outputs}
    return [f"{prefix}{o}" for o in STAGES[name].outputs if o not in later]


def _outputs(stage: str) -> set[str]:
    prefix, name = _scoped(stage)
    return {f"{prefix}{o}" for o in STAGES[name].outputs}


def _point_table(point: str) -> str:
    """The table key a point cuts: 'fit/candidates/rankings' -> 'fit/rankings'."""
    prefix = "fit/" if point.startswith("fit/") else ""
    return prefix + point.rpartition("/")[2]


def _at_fault(run: Path, point: str, kind: str, log: str) -> list[str]:
    """Problems with the state at the fault: where it landed, what a reader sees."""
    problems = []
    line = next((ln for ln in log.splitlines() if ln.startswith(f"[fault] {kind} at {point}:")), "")
    if not line:
        return [f"no '[fault] {kind} at {point}' line: {log[-1500:]}"]
    if point == MODEL_POINT:
        folder = run / MODEL_POINT
        written = sorted(p.name for p in folder.glob("model-*.txt"))
        if "meta.json not yet" not in line or (folder / "meta.json").exists():
            problems.append(f"not between the model file and meta.json: {line}")
        # After a kill the model file is there; a raise / ENOSPC removes it (nothing names it).
        if bool(written) != (kind == "kill"):
            problems.append(f"model files after {kind}: {written}")
        return problems
    if "manifest absent" not in line or " 0 data file" in line:
        problems.append(f"not between data and manifest: {line}")
    tmps = _uncommitted_versions(run / _point_table(point))
    if kind == "kill":  # nothing cleans up after SIGKILL: the version folder is there
        if len(tmps) != 1:
            problems.append(f"expected one version folder no manifest names: {tmps}")
        elif not list(tmps[0].rglob("*.parquet")):
            problems.append(f"{tmps[0].name} holds no data files")
    elif tmps:  # raise / enospc: the writer removed its version folder
        problems.append(f"uncommitted version folders left after {kind}: {tmps}")
    return problems


def _uncommitted_versions(table: Path) -> list[Path]:
    """A table's version folders that its manifest (if any) does not name."""
    if not table.is_dir():
        return []
    named = set()
    if (table / tableio.MANIFEST).is_file():
        named = {
            f["path"].split("/")[0]
            for f in json.loads((table / tableio.MANIFEST).read_text())["files"]
        }
    return [p for p in sorted(table.glob("v-*")) if p.name not in named]


def _leftovers(run: Path) -> list[Path]:
    """Anything of an interrupted write still in the run or its fit pass: temp siblings,
    unnamed versions, model files meta.json does not name."""
    out = []
    for folder in (run, run / "fit"):
        if not folder.is_dir():  # a run of the stages up to candidates has no fit pass
            continue
        out += [p for p in folder.iterdir() if p.name.startswith((".tmp-", ".old-"))]
        out += [v for d in folder.iterdir() if d.is_dir() for v in _uncommitted_versions(d)]
    model = run / MODEL_POINT
    if not (model / "meta.json").exists():
        return out + (sorted(model.iterdir()) if model.is_dir() else [])
    named = json.loads((model / "meta.json").read_text())["model_file"]
    return out + [p for p in model.iterdir() if p.name not in (named, "meta.json")]


def _compare(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame], names: list[str]):
    """-> (problems, rows lost) of the named tables against the clean run's."""
    problems, lost = [], 0
    for name in names:
        if name not in got:
            problems.append(f"{name} not committed")
            lost += want[name].height
            continue
        lost += abs(want[name].height - got[name].height)
        if not got[name].equals(want[name]):
            problems.append(
                f"{name} differs from the clean run: {_first_diff(got[name], want[name])}"
            )
    return problems, lost


def _first_diff(got: pl.DataFrame, want: pl.DataFrame) -> str:
    if got.columns != want.columns or got.height != want.height:
        return f"columns {got.columns} vs {want.columns}, rows {got.height} vs {want.height}"
    for c in got.columns:
        if not got[c].equals(want[c]):
            k = next(i for i, (a, b) in enumerate(zip(got[c], want[c], strict=True)) if a != b)
            return f"column {c}, row {k}: {got.row(k)} vs {want.row(k)}"
    return "equal by column (dtype?)"


@pytest.mark.parametrize("kind", KINDS)
def test_fault_at_every_stage_then_resume(world, kind, tmp_path, monkeypatch, capfd):
    started = time.perf_counter()
    run = tmp_path / "r"
    pending: list[tuple[str, str, list[str]]] = []  # points whose stage is not committed yet
    all_problems: list[str] = []

    def committed_by(key: str, stage: str) -> bool:
        prefix, name = _scoped(stage)
        table = key.removeprefix(prefix)
        return tableio.read_manifest(run / prefix, table)["stage"] == name

    def settle(cells: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
        """Record the cells whose stage is now committed: re-run = clean, rows lost."""
        got, left = contents(run), []
        for stage, point, problems in cells:
            names = _outputs_checked(stage)
            # Committed by this stage (rankings is committed by candidates before rank).
            if not all(n in got and committed_by(n, stage) for n in names):
                left.append((stage, point, problems))
                continue
            diff, lost = _compare(got, world.clean, names)
            if stage == "fit_ranker" and model_bytes(run) != world.model:
                diff.append("the model file differs from the clean run's")
            problems = problems + diff
            MATRIX[(point, kind)] = (
                f"re-run = clean, {lost} rows lost"
                if not problems
                else "FAIL: " + "; ".join(problems)
            )
            all_problems.extend(f"{point}:{kind}: {p}" for p in problems)
        return left

    for i, (stage, point) in enumerate(POINTS):
        before = _committed_files(run)
        manifests = {t: f.get(tableio.MANIFEST) for t, f in before.items()}
        rerun = {stage, POINTS[i - 1][0]} if i else {stage}
        if kind == "kill":
            res = _cli(world, tmp_path, _env(**{FAULT_ENV: f"{point}:kill"}))
            log = res.stderr
            problems = [] if res.returncode == -signal.SIGKILL else [f"exit {res.returncode}"]
        else:
            monkeypatch.setenv(FAULT_ENV, f"{point}:{kind}")
            expected = InjectedFaultError if kind == "raise" else DiskFullError
            try:
                run_stages(run, world.cfg, planned(world.cfg))
                problems = ["the run finished: no fault fired"]
            except expected as exc:
                problems = []
                what = point.rpartition("/")[2]
                if kind == "enospc" and (
                    "no space left on the device" not in str(exc) or what not in str(exc)
                ):
                    problems.append(f"DiskFullError does not name '{what}': {exc}")
            monkeypatch.delenv(FAULT_ENV)
            log = capfd.readouterr().err
        problems += _at_fault(run, point, kind, log)
        # Finished work is not redone: every planned stage before the one resumed is skipped
        # (the CLI runs the plan; a stage outside it never says anything).
        order = log_order(world.cfg)
        first = min(order.index(s) for s in rerun)
        problems += [f"redid {s}" for s in order[:first] if f"[{s}] skipped" not in log]
        after = _committed_files(run)
        # No reader sees the write that was cut: the table is as it was before the run.
        if point == MODEL_POINT:
            if (run / MODEL_POINT / "meta.json").exists():
                problems.append("a reader sees a model after the fault")
        elif after.get(_point_table(point), {}).get(tableio.MANIFEST) != manifests.get(
            _point_table(point)
        ):
            problems.append(f"{point}: a reader sees a new version after the fault")
        # The committed run is intact: what the run did not rewrite is byte-identical.
        rewritten = {o for s in rerun for o in _outputs(s)} | {MODEL_POINT}
        for t, files in before.items():
            if t not in rewritten and after.get(t) != files:
                problems.append(f"committed table {t} changed")
        pending = settle([*pending, (stage, point, problems)])

    if kind == "kill":
        res = _cli(world, tmp_path, _env())
        assert res.returncode == 0, res.stderr[-3000:]
        log = res.stderr
    else:
        outcome = run_stages(run, world.cfg, planned(world.cfg))
        assert outcome["evaluate"] == "ran" and outcome["ingest"] == "skipped"
        log = capfd.readouterr().err
    # The last run starts at the stage cut last: every other stage is skipped.
    for stage in log_order(world.cfg)[:-1]:
        assert f"[{stage}] skipped" in log, log[-3000:]
    pending = settle(pending)
    assert not pending
    SECONDS[kind] = time.perf_counter() - started
    assert all_problems == [], "\n".join(all_problems)
    assert not _leftovers(run)
    assert not (run / "_work").exists()
    got = contents(run)
    assert sorted(got) == sorted(world.clean)
    for name, df in world.clean.items():
        assert got[name].equals(df), name  # exact: floats included
    assert model_bytes(run) == world.model


def _write_matrix() -> None:
    """The fault matrix of this test run, printed, and into WALKRANK_FAULT_MATRIX's file
    (between its markers) once every kind has run (a partial run, e.g. `-k raise`, leaves it
    alone)."""
    if {k for _, k in MATRIX} != set(KINDS):
        return
    begin, end = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"
    lines = [
        begin,
        f"Generated by `tests/test_faults.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[1]:.1f} (machine shared); seconds per kind: "
        + ", ".join(f"{k} {v:.0f}" for k, v in SECONDS.items())
        + "). The default configuration on a generated log of "
        f"{LOG_EVENTS:,} events (`tests/test_faults.py`'s `world`; the guard's thresholds "
        "lowered so this small log keeps its ranker): the learned ranker, its fit pass (`fit/`) "
        "and the model folder's commit. A cell: the re-run's tables of that "
        "stage against one clean run's, by content (sorted rows, exact; for `fit_ranker` also "
        "the model file, byte for byte), and the rows lost; every cell also checks that the "
        "fault landed between data and manifest (or model file and meta.json), that no reader "
        "saw the cut write and that the committed tables stayed byte-identical.",
        "",
        "| stage | fault point | " + " | ".join(KINDS) + " |",
        "|---|---|" + "---|" * len(KINDS),
    ]
    for stage, point in POINTS:
        cells = [MATRIX.get((point, k), "not run") for k in KINDS]
        lines.append(f"| {stage} | `{point}` | " + " | ".join(cells) + " |")
    lines.append(end)
    print("\n".join(lines))
    target = Path(MATRIX_FILE) if MATRIX_FILE else None
    text = target.read_text() if target and target.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        target.write_text(head + "\n".join(lines) + rest.split(end, 1)[1])


def _two_writers_cmd(data: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "pipelines.cli", "run", "--input", str(data), "--out", str(out),
        "--run-id", "r", "--stages", "ingest,split,graph", "--set", "spark.master=local[2]",
    ]  # fmt: skip


def test_two_writers_on_one_run_id(world, tmp_path):
    data = world.base / "log"
    first = subprocess.Popen(
        _two_writers_cmd(data, tmp_path), cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        for line in first.stderr:
            if "[ingest] running" in line:
                break
        second = subprocess.run(
            _two_writers_cmd(data, tmp_path), cwd=ROOT, env=_env(), capture_output=True, text=True
        )
        assert second.returncode == 2
        assert "being written by another process" in second.stderr
        assert "Traceback" not in second.stderr
        rest = first.stderr.read()
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, rest[-3000:]
    assert tableio.is_committed(tmp_path / "r", "graph_edges")


FLAKY_JOB = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, pyarrow as pa
    from pyspark import TaskContext
    from pipelines.config import PprConfig, SparkConfig
    import pyarrow.parquet as pq
    from pipelines.ppr.broadcast import COUNTS_SCHEMA, _file_writer, _kernel, _prepare
    from pipelines.spark_session import get_spark
    from schemas.tables import ITEM_PPR

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

    def ppr_rows(seed):  # the kernel's rows as a DataFrame (the stage writes files instead)
        work, bc, _ = _prepare(spark, edges, 60, sources, cfg)
        walk = _kernel(bc, cfg, seed)
        return work.mapInArrow(lambda b: (r for r, _, _ in walk(b)), ITEM_PPR.spark_ddl())

    sources = np.unique(s)
    clean = ppr_rows(7)
    again = ppr_rows(7)
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


def _mount_tmpfs(path: Path, size: str) -> subprocess.CompletedProcess:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )


def _fill(path: Path, leave: int) -> None:
    """Fill the filesystem of `path` until at most `leave` bytes are free."""
    with (path / "filler").open("wb") as fh:
        try:
            while (free := os.statvfs(path).f_bavail * os.statvfs(path).f_frsize) > leave:
                fh.write(b"\0" * min(1 << 20, max(4096, free - leave)))
                fh.flush()
        except OSError:
            pass


def test_a_disk_that_fills_during_a_table_write(world, tmp_path):
    """A real full disk: a tmpfs holding the run, filled so that the next table's data files
    do not fit but the run's own small files do. The CLI prints the DiskFullError line naming
    the table; every table committed before is byte-identical afterwards."""
    mnt = tmp_path / "small"
    mounted = _mount_tmpfs(mnt, "32m")
    if mounted.returncode != 0:
        if IN_CI:
            pytest.fail(f"CI must run the full-disk test; mount failed: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        cmd = [
            sys.executable, "-m", "pipelines.cli", "run", "--out", str(mnt), "--run-id", "r",
            "--stages", "ingest,split,graph,ppr,neighbors,candidates",
        ]  # fmt: skip
        for s in world.settings:
            cmd += ["--set", s]
        first = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr[-3000:]
        run_dir = mnt / "r"
        before = _committed_files(run_dir)
        size = sum(len(b) for b in before["candidates"].values())
        assert size > 256 * 1024  # the table re-written below cannot fit in what is left
        _fill(mnt, 64 * 1024)
        again = subprocess.run(
            [*cmd, "--stages", "candidates", "--force"],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert again.returncode == 2, again.stderr[-3000:]
        assert (
            f"error: no space left on the device while writing table 'candidates' in {run_dir}"
            in again.stderr
        ), again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        assert "[candidates] running" in again.stderr  # it failed in the write, not before
        (mnt / "filler").unlink()
        assert _committed_files(run_dir) == before
        assert not _leftovers(run_dir)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
