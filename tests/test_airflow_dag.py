"""The walkrank_daily DAG in a real Airflow 3 (its own venv, `make airflow-setup`): it imports
cleanly, its tasks and edges follow the stage registry (through the spec `walkrank plan --json`
writes; tests/unit/test_jobs.py checks the committed spec is current), and `airflow dags test`
runs the whole DAG, producing the same rankings and metrics as a CLI run of the same config.
No stage name is written here: the special tasks are found by what their stages write."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.config import load_config
from pipelines.stage_registry import DEFAULT_STAGES, STAGES
from tests.ray_head import ray_head

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
DAGS = ROOT / "airflow_dags"

NEEDS_AIRFLOW = pytest.mark.skipif(
    not AIRFLOW_PY.exists() and not os.environ.get("CI"),
    reason="Airflow's venv is missing: run `make airflow-setup` (make test does)",
)
pytestmark = NEEDS_AIRFLOW

SETS = ["spark.master=local[2]", "ppr.walks_per_node=100", "llm.enabled=false"]
SPARK_CONN = json.dumps({"conn_type": "spark", "host": "local[2]"})


def _writer(table: str) -> str:
    """The stage that writes `table` last in pipeline order."""
    return [s.name for s in STAGES.values() if table in s.outputs][-1]


RANKED, SCORED = _writer("rankings"), _writer("metrics")
# The stage a job's --input/--format are for: its config keys cover ingest.input.
(READS_INPUT,) = [n for n, s in STAGES.items() if "ingest" in s.config_keys]


def _airflow_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": SPARK_CONN,
        "WALKRANK_HOME": str(ROOT),
        "WALKRANK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        **extra,
    }


def _probe(home: Path, code: str, *args: str) -> dict:
    res = subprocess.run(
        [str(AIRFLOW_PY), "-c", code, *args],
        env=_airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


DAGBAG = (
    "import json; from airflow.dag_processing.dagbag import DagBag\n"
    f"bag = DagBag({str(DAGS)!r})\n"
    "dag = bag.dags['walkrank_daily']\n"
    "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},\n"
    "  'tasks': {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},\n"
    "  'kinds': {t.task_id: type(t).__name__ for t in dag.tasks},\n"
    "  'outlets': {t.task_id: [a.name for a in t.outlets] for t in dag.tasks},\n"
    "  'retries': [t.retries for t in dag.tasks],\n"
    "  'timeouts': [t.execution_timeout.total_seconds() for t in dag.tasks],\n"
    "  'params': sorted(dag.params.keys())}))"
)


def test_dag_imports_with_the_registry_tasks_and_order(tmp_path):
    info = _probe(tmp_path, DAGBAG)
    assert info["errors"] == {}
    upstream = info["tasks"]
    # One task per registry stage, then the previous day's run scored against today's events.
    assert set(upstream) == {*DEFAULT_STAGES, "evaluate_previous"}
    assert upstream["evaluate_previous"] == [SCORED]
    # Spark (and driver-only) stages go through the Spark provider; Ray stages are Ray jobs.
    for name in DEFAULT_STAGES:
        want = "RayJobOperator" if STAGES[name].engine == "ray" else "SparkSubmitOperator"
        assert info["kinds"][name] == want, name
    assert info["kinds"]["evaluate_previous"] == "SparkSubmitOperator"
    assert {t for t, names in info["outlets"].items() if names} == {RANKED}
    assert info["outlets"][RANKED] == ["walkrank_rankings"]
    assert min(info["retries"]) >= 1 and min(info["timeouts"]) > 0
    assert info["params"] == ["config", "format", "history", "new_events", "out", "sets"]

    def ancestors(task: str) -> set[str]:
        seen, todo = set(), list(upstream[task])
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(upstream[t])
        return seen

    # Every stage follows every stage that writes a table it may read (the spec's upstream,
    # less the edges another path already implies).
    producers = {out: s.name for s in STAGES.values() for out in s.outputs}
    for name, stage in STAGES.items():
        may_read = {producers[i] for i in stage.inputs_for(None) if i in producers} - {name}
        assert may_read <= ancestors(name), (name, may_read - ancestors(name))
    # Every table a stage reads (by default, and with every optional ranker feature on)
    # comes from an ancestor task.
    features = ["rank.text_features=true", "rank.llm_feature=true", "rank.summary_feature=true"]
    producers = {out: s.name for s in STAGES.values() for out in s.outputs}
    for cfg in (load_config(None, []), load_config(None, features)):
        for name, stage in STAGES.items():
            needed = {producers[i] for i in stage.inputs_for(cfg) if i in producers} - {name}
            assert needed <= ancestors(name), (name, needed - ancestors(name))


# What a shell would act on: quotes, ;, $(...), backticks, pipes, redirections, globs, newlines.
HOSTILE = "x' \"; touch /tmp/walkrank-pwned; $(id) `id` | cat > /tmp/o & *"
HOSTILE_PARAMS = {
    "history": HOSTILE + "-history",
    "new_events": HOSTILE + "-new",
    "out": HOSTILE + "-out",
    "config": HOSTILE + "-config",
    "format": HOSTILE + "-format",
    "sets": ["ppr.alpha=0.3'; $(rm -rf ~)", HOSTILE + "-set"],
}
HOSTILE_RUN_ID = "manual__2026-11-30T10:00:00+00:00'; $(id)"

# Renders every task with the params above (as if the trigger form's checks were bypassed),
# twice: a run with a data interval, and one without (a trigger with no logical date). For a
# spark-submit task it prints the exact argv the Spark provider's hook builds (Popen with a
# list, no shell); for a Ray job, its entrypoint and the env that carries its arguments.
RENDER = """
import copy, json, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
bag = DagBag(sys.argv[1])
dag = bag.dags["walkrank_daily"]
params, run_id = json.loads(sys.argv[2]), sys.argv[3]
rejected = {}
for key, value in params.items():
    try:
        dag.params.get_param(key).resolve(value=value)
        rejected[key] = False
    except Exception:
        rejected[key] = True
safe = {"history": "s3a://lake/walkrank/history", "new_events": "/data/new_events",
        "out": "hdfs://nn:8020/runs", "config": "conf/cluster.toml", "format": "parquet",
        "sets": ["candidates.sources=[\\"ppr\\", \\"item_cf\\"]", "ppr.alpha=0.3"]}
accepted = {}
for key, value in safe.items():
    try:
        dag.params.get_param(key).resolve(value=value)
        accepted[key] = True
    except Exception:
        accepted[key] = False
out = {"rejected": rejected, "accepted": accepted, "runs": []}
for start in (pendulum.datetime(2026, 11, 20, tz="UTC"), None):
    rendered = {}
    for task in dag.tasks:
        t = copy.deepcopy(task)
        t.render_template_fields({"params": params, "run_id": run_id,
                                  "data_interval_start": start, "ds": ""})
        if isinstance(t, SparkSubmitOperator):
            hook = t._get_hook()
            rendered[t.task_id] = {"argv": hook._build_spark_submit_command(t.application),
                                   "application": t.application}
        else:
            rendered[t.task_id] = {"entrypoint": t.entrypoint(), "env": t.runtime_env()["env_vars"]}
    out["runs"].append(rendered)
s3 = {"history": "s3://lake/history", "new_events": "s3a://lake/new_events",
      "out": "s3://walkrank/runs", "config": "", "format": "sequences", "sets": []}
out["s3_accepted"] = all(dag.params.get_param(k).resolve(value=v) == v for k, v in s3.items())
out["s3"] = {}
for task in dag.tasks:
    if task.task_id in (sys.argv[4], "evaluate_previous"):
        t = copy.deepcopy(task)
        t.render_template_fields({"params": s3, "run_id": run_id, "ds": "",
                                  "data_interval_start": pendulum.datetime(2026, 11, 20, tz="UTC")})
        out["s3"][t.task_id] = t._get_hook()._build_spark_submit_command(t.application)
print(json.dumps(out))
"""


def _decoded(args: list[str]) -> list:
    """Job arguments with the `--sets-json` one parsed (tojson escapes quotes its own way)."""
    return [
        ("--sets-json", json.loads(a.split("=", 1)[1])) if a.startswith("--sets-json=") else a
        for a in args
    ]


def test_hostile_params_reach_no_shell(tmp_path):
    info = _probe(
        tmp_path, RENDER, str(DAGS), json.dumps(HOSTILE_PARAMS), HOSTILE_RUN_ID, READS_INPUT
    )
    # The trigger form refuses them (JSON-schema patterns, an enum) and accepts real values.
    assert all(info["rejected"].values()), info["rejected"]
    assert all(info["accepted"].values()), info["accepted"]

    p = HOSTILE_PARAMS
    # Without a data interval (no logical date), the run id, made path-safe, names the run.
    no_interval = re.sub(r"[^A-Za-z0-9._-]", "_", HOSTILE_RUN_ID)
    for (day, prev), rendered in zip(
        [("2026-11-20", "2026-11-19"), (no_interval, "none")], info["runs"], strict=True
    ):
        common = [
            f"--run-dir={p['out']}/{day}",
            f"--config={p['config']}",
            "--sets-json=" + json.dumps(["eval.target=serve", *p["sets"]]),
        ]
        ingest = [f"--input={p['history']}/{day}", f"--format={p['format']}"]
        # A spark-submit's application arguments start with the stage; a Ray job's entrypoint
        # names it.
        expected = {
            n: ([] if STAGES[n].engine == "ray" else [n])
            + common
            + (ingest if n == READS_INPUT else [])
            for n in DEFAULT_STAGES
        }
        expected["evaluate_previous"] = [
            SCORED,
            f"--run-dir={p['out']}/{prev}",
            f"--against={p['new_events']}/{day}",
            f"--format={p['format']}",
        ]
        assert set(rendered) == set(expected)
        for name, r in rendered.items():
            if "argv" in r:
                # spark-submit itself is run (Popen of a list, no sh -c); each parameter is
                # inside exactly one of the job's arguments, after the application.
                argv = r["argv"]
                assert argv[0] == "spark-submit", argv
                app = argv.index(r["application"])
                assert not any("walkrank-pwned" in a for a in argv[:app]), argv[:app]
                assert _decoded(argv[app + 1 :]) == _decoded(expected[name]), name
            else:
                # A Ray job: a fixed entrypoint; the arguments only in its environment.
                assert r["entrypoint"].endswith(f"-m jobs.stage_job {name}"), r
                assert "walkrank-pwned" not in r["entrypoint"] and "$(" not in r["entrypoint"]
                args = json.loads(r["env"]["WALKRANK_JOB_ARGS"])
                assert _decoded(args) == _decoded(expected[name]), name

    # S3 URIs pass through untouched, and the S3A jars `make jars` installed are shipped.
    assert info["s3_accepted"]
    ingest, previous = info["s3"][READS_INPUT], info["s3"]["evaluate_previous"]
    assert "--input=s3://lake/history/2026-11-20" in ingest
    assert "--run-dir=s3://walkrank/runs/2026-11-20" in ingest
    assert "--run-dir=s3://walkrank/runs/2026-11-19" in previous
    assert "--against=s3a://lake/new_events/2026-11-20" in previous
    jars = ingest[ingest.index("--jars") + 1].split(",")
    assert any(Path(j).name.startswith("hadoop-aws-") for j in jars), jars


def _json_out(stdout: str) -> list:
    """The JSON an Airflow CLI command printed after its log lines."""
    return json.loads(next(ln for ln in reversed(stdout.splitlines()) if ln.startswith("[")))


def _write_csv(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("user_id,item_id,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))


@pytest.mark.slow
def test_airflow_dags_test_runs_the_whole_dag(tmp_path):
    """`airflow dags test` of day 2026-11-21: Spark stages through SparkSubmitOperator
    (spark_default = local[2]), the Ray stages as jobs on a local head, then the day before's
    run (made here by the CLI from the same history) scored against the day's new events.
    In Airflow 3 a run's logical date is the end of its interval: day D is logical date D + 1."""
    rng = random.Random(2)
    t0 = 1_763_000_000
    history = [
        (f"u{u}", f"i{rng.randrange(40)}", t0 + 3600 * k)
        for u in range(50)
        for k in range(rng.randint(3, 10))
    ]
    new = [(f"u{u}", f"i{rng.randrange(40)}", t0 + 86_400 * 30 + u) for u in range(0, 50, 2)]
    # <history>/<day>: everything up to that day; the two days hold the same log, so the DAG's
    # run of the 21st must equal the CLI's run of the 20th.
    for day in ("2026-11-20", "2026-11-21"):
        _write_csv(tmp_path / "history" / day / "events.csv", history)
    _write_csv(tmp_path / "new_events" / "2026-11-21" / "events.csv", new)
    runs = tmp_path / "runs"

    cli = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input",
         str(tmp_path / "history" / "2026-11-20"), "--format", "csv", "--out", str(runs),
         "--run-id", "2026-11-20", "--set", "eval.target=serve",
         *[a for s in SETS for a in ("--set", s)]],
        cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]

    home = tmp_path / "airflow"
    airflow = str(AIRFLOW_PY.parent / "airflow")
    spark_bin = Path(sys.executable).parent  # spark-submit on PATH, as the provider wants
    with ray_head() as head:
        env = _airflow_env(
            home,
            PATH=f"{spark_bin}:{os.environ['PATH']}",
            WALKRANK_RAY_ADDRESS=head.job_server,
            WALKRANK_RAY_PYTHON=sys.executable,
            **head.auth,
        )
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        conf = {
            "history": str(tmp_path / "history"),
            "new_events": str(tmp_path / "new_events"),
            "out": str(runs),
            "format": "csv",
            "sets": SETS,
        }
        res = subprocess.run(
            [airflow, "dags", "test", "walkrank_daily", "2026-11-22", "--conf", json.dumps(conf)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        out = (res.stdout + res.stderr)[-6000:]
        assert res.returncode == 0, out
        # The Ray stages ran as jobs on the head.
        drivers = "".join(
            p.read_text(errors="replace")
            for p in head.temp_dir.glob("session_latest/logs/job-driver-*.log")
        )
        ray_stages = [n for n, s in STAGES.items() if s.engine == "ray"]
        assert ray_stages and all(f"[{n}] done" in drivers for n in ray_stages), drivers[-3000:]

    # Every task of the run succeeded (dags test can exit 0 with a failed task).
    listed = subprocess.run(
        [airflow, "dags", "list-runs", "walkrank_daily", "-o", "json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    (run,) = _json_out(listed.stdout)
    assert run["state"] == "success", (run, out)
    states = subprocess.run(
        [airflow, "tasks", "states-for-dag-run", "walkrank_daily", run["run_id"], "-o", "json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert states.returncode == 0, states.stderr[-3000:]
    tasks = {t["task_id"]: t["state"] for t in _json_out(states.stdout)}
    assert tasks == dict.fromkeys([*DEFAULT_STAGES, "evaluate_previous"], "success"), tasks

    run_dir = runs / "2026-11-21"
    for table in ("rankings", "metrics", "candidates"):
        assert tableio.is_committed(run_dir, table), out
    # evaluate_previous: the 20th's run scored against the 21st's new events.
    assert tableio.is_committed(runs / "2026-11-20", "served_metrics"), out
    for table, keys in (
        ("rankings", ["user_id", "rank"]),
        ("metrics", ["table", "metric", "k", "segment"]),
    ):
        a = tableio.read_polars(run_dir, table).sort(keys)
        b = tableio.read_polars(runs / "2026-11-20", table).sort(keys)
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9)
