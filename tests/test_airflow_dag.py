"""The walkrank_daily DAG in a real Airflow 3 (its own venv, `make airflow-setup`): it imports
cleanly, its tasks and edges follow the stage registry (through the spec `walkrank plan --json`
writes; tests/unit/test_jobs.py checks the committed spec is current), every parameter reaches
a job as one argv element, and `airflow dags test` of the default config runs the stages its
plan needs, skips the others with the plan's reason, produces the same rankings and metrics as
a CLI run of the same config, and announces them (the Asset event) only when the quality gate
passes. A trigger's `sets` name only keys of the config the deployment allows (no
`spark.conf.*`, endpoint or path by default) and the path params keep the deployment's values:
anything else is refused when the run would be created, so none is; the logs the DAG copies
lose their secrets, and a run with credentials in its profile and environment leaves them in
no file. No stage name is written here: the special tasks are found by what their stages
write."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.config import load_config
from pipelines.redact import redact_text, secret_values
from pipelines.stage_registry import DEFAULT_STAGES, STAGES
from pipelines.trigger_fence import FENCED
from tests.daily_history import history_rows, write_csv
from tests.ray_head import head_auth, ray_head

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
DAGS = ROOT / "airflow_dags"

NEEDS_AIRFLOW = pytest.mark.skipif(
    not AIRFLOW_PY.exists() and not os.environ.get("CI"),
    reason="Airflow's venv is missing: run `make airflow-setup` (make test does)",
)
pytestmark = NEEDS_AIRFLOW

# The default config, sized for a tiny log (these change no stage the plan picks); a DAG run
# gets the master from spark_default (a trigger may not set spark.master).
SETS = ["spark.master=local[2]", "ppr.walks_per_node=100"]
DAG_SETS = ["ppr.walks_per_node=100"]
# What the path params of the render test are: a deployment that lets a trigger set them.
PATHS_SETTABLE = {"WALKRANK_TRIGGER_SETTABLE": "*.*,history,new_events,out,config"}
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


def _probe(home: Path, code: str, *args: str, **env: str) -> dict:
    """Run `code` in Airflow's venv; the DAG folder on sys.path, as Airflow puts it (the DAG
    imports walkrank_trigger.py beside it)."""
    res = subprocess.run(
        [str(AIRFLOW_PY), "-c", f"import sys; sys.path.insert(0, {str(DAGS)!r})\n" + code, *args],
        env=_airflow_env(home, **env),
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
    "  'rules': {t.task_id: str(t.trigger_rule.value) for t in dag.tasks},\n"
    "  'retries': [t.retries for t in dag.tasks],\n"
    "  'timeouts': [t.execution_timeout.total_seconds() for t in dag.tasks],\n"
    "  'params': sorted(dag.params.keys())}))"
)


def test_dag_imports_with_the_registry_tasks_and_order(tmp_path):
    info = _probe(tmp_path, DAGBAG)
    assert info["errors"] == {}
    upstream = info["tasks"]
    # The plan, one task per registry stage, the quality gate after the last stage writing
    # rankings; the previous day's run scored against today's events, after nothing of today.
    assert set(upstream) == {"plan", *DEFAULT_STAGES, "quality_gate", "evaluate_previous"}
    # The input stage first (in every plan), then the plan (rank.model = latest reads the
    # run's events), then every other stage.
    assert upstream["plan"] == [READS_INPUT] and upstream[READS_INPUT] == []
    assert upstream["evaluate_previous"] == []
    assert upstream["quality_gate"] == [RANKED]
    # Spark (and driver-only) stages go through the Spark provider; Ray stages are Ray jobs.
    for name in DEFAULT_STAGES:
        want = "RayJobOperator" if STAGES[name].engine == "ray" else "SparkStageOperator"
        assert info["kinds"][name] == (want if name != READS_INPUT else "SparkSubmitOperator")
    assert info["kinds"]["evaluate_previous"] == "SparkSubmitOperator"
    assert info["kinds"]["plan"] == "PlanOperator"
    assert info["kinds"]["quality_gate"] == "QualityGateOperator"
    # Only the gate announces the rankings.
    assert {t for t, names in info["outlets"].items() if names} == {"quality_gate"}
    assert info["outlets"]["quality_gate"] == ["walkrank_rankings"]
    # A stage out of the plan ends skipped: what follows it still runs (none_failed).
    assert {t for t, r in info["rules"].items() if r == "none_failed"} == {
        *DEFAULT_STAGES,
        "quality_gate",
    } - {READS_INPUT}
    assert min(info["retries"]) >= 1 and min(info["timeouts"]) > 0
    assert info["params"] == ["config", "format", "history", "new_events", "out", "refit", "sets"]

    def ancestors(task: str) -> set[str]:
        seen, todo = set(), list(upstream[task])
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(upstream[t])
        return seen

    # Every stage follows the plan, and every stage that writes a table it may read (the
    # spec's upstream, less the edges another path already implies).
    producers = {out: s.name for s in STAGES.values() for out in s.outputs}
    for name, stage in STAGES.items():
        assert name == READS_INPUT or "plan" in ancestors(name), name
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
    "refit": HOSTILE + "-refit",
}
HOSTILE_RUN_ID = "manual__2026-11-30T10:00:00+00:00'; $(id)"

# Renders every task with the params above (as if the trigger form's checks were bypassed),
# twice: a run with a data interval, and one without (a trigger with no logical date). For a
# spark-submit task it prints the exact argv the Spark provider's hook builds (Popen with a
# list, no shell); for a Ray job, its entrypoint, submission id and the env that carries its
# arguments; for the plan and the gate, the `walkrank` arguments they run. Then the plan's
# --set list for each refit on a Friday and a Sunday.
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
        "sets": ["candidates.sources=[\\"ppr\\", \\"item_cf\\"]", "ppr.alpha=0.3"],
        "refit": "sunday"}
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
        elif hasattr(t, "entrypoint"):
            rendered[t.task_id] = {"entrypoint": t.entrypoint(), "sid": t.submission_id(),
                                   "env": t.runtime_env()["env_vars"]}
        else:
            rendered[t.task_id] = {"walkrank": t.argv()}
    out["runs"].append(rendered)
out["refit"] = {}
for refit in ("always", "sunday", "friday"):
    for start in (pendulum.datetime(2026, 11, 20, tz="UTC"), pendulum.datetime(2026, 11, 22, tz="UTC")):
        t = copy.deepcopy(dag.get_task("plan"))
        t.render_template_fields({"params": {**safe, "refit": refit}, "run_id": run_id,
                                  "data_interval_start": start, "ds": ""})
        out["refit"][f"{refit} {start.format('dddd')}"] = json.loads(t.sets)
s3 = {"history": "s3://lake/history", "new_events": "s3a://lake/new_events",
      "out": "s3://walkrank/runs", "config": "", "format": "sequences", "sets": [],
      "refit": "always"}
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
        tmp_path, RENDER, str(DAGS), json.dumps(HOSTILE_PARAMS), HOSTILE_RUN_ID, READS_INPUT,
        **PATHS_SETTABLE,
    )  # fmt: skip
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
        # The plan and the gate run the project's `walkrank`: one argument per parameter.
        expected["plan"] = [
            "plan", "--json", f"--run-dir={p['out']}/{day}", f"--config={p['config']}",
            *[f"--set={s}" for s in ["eval.target=serve", *p["sets"]]],
        ]  # fmt: skip
        expected["quality_gate"] = [
            "gate",
            f"--previous={p['out']}/{prev}",
            "--",
            f"{p['out']}/{day}",
        ]
        assert set(rendered) == set(expected)
        for name, r in rendered.items():
            if "walkrank" in r:
                assert r["walkrank"] == expected[name], name
            elif "argv" in r:
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
                # Every try of the run's stage has the same submission id (a retry finds it).
                run_dir = f"{p['out']}/{day}".encode()
                assert r["sid"] == f"walkrank-{name}-{hashlib.sha256(run_dir).hexdigest()[:16]}"
                assert re.fullmatch(r"[A-Za-z0-9_-]+", r["sid"]), r["sid"]

    # refit: on a day other than the refit day, rank.model=latest, before the params' sets.
    base, sets = ["eval.target=serve"], ['candidates.sources=["ppr", "item_cf"]', "ppr.alpha=0.3"]
    latest = [*base, "rank.model=latest", *sets]
    assert info["refit"] == {
        "always Friday": base + sets, "always Sunday": base + sets,
        "sunday Friday": latest, "sunday Sunday": base + sets,
        "friday Friday": base + sets, "friday Sunday": latest,
    }  # fmt: skip

    # S3 URIs pass through untouched, and the S3A jars `make jars` installed are shipped.
    assert info["s3_accepted"]
    ingest, previous = info["s3"][READS_INPUT], info["s3"]["evaluate_previous"]
    assert "--input=s3://lake/history/2026-11-20" in ingest
    assert "--run-dir=s3://walkrank/runs/2026-11-20" in ingest
    assert "--run-dir=s3://walkrank/runs/2026-11-19" in previous
    assert "--against=s3a://lake/new_events/2026-11-20" in previous
    jars = ingest[ingest.index("--jars") + 1].split(",")
    assert any(Path(j).name.startswith("hadoop-aws-") for j in jars), jars


# Each param value as a trigger gives it, through the DAG's schemas: "ok", or the first line
# of the refusal. Then the DAG's redaction of a copied log, with the environment given.
FENCE_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
import walkrank_trigger
dag = DagBag(sys.argv[1]).dags["walkrank_daily"]
values, log, env = json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
out = {"checked": [], "defaults": {k: dag.params.get_param(k).value for k in dag.params}}
for key, value in values:
    try:
        dag.params.get_param(key).resolve(value=value)
        out["checked"].append("ok")
    except Exception as exc:
        out["checked"].append(str(exc).splitlines()[0])
fence = json.loads(open(sys.argv[1] + "/walkrank_fence.json").read())
out["redacted"] = walkrank_trigger.redacted(log, fence, env)
print(json.dumps(out))
"""
PATH_PARAMS = ("history", "new_events", "out", "config")
LOG = """[rank] running
--conf spark.hadoop.fs.s3a.secret.key=abcSECRET1 --conf spark.sql.shuffle.partitions=8
{"fs.s3a.session.token": "tokSECRET2", "rows": 3}
RAY_AUTH_TOKEN=rayauthSECRET3; AWS_SECRET_ACCESS_KEY in a line: envSECRET4, max_new_tokens=48
"""
LOG_ENV = {"AWS_SECRET_ACCESS_KEY": "envSECRET4", "RAY_AUTH_TOKEN": "rayauthSECRET3", "X": "y"}


def _fence(tmp_path: Path, values: list[tuple[str, object]], **env: str) -> dict:
    return _probe(
        tmp_path, FENCE_PROBE, str(DAGS), json.dumps(values), LOG, json.dumps(LOG_ENV), **env
    )


def test_a_trigger_sets_only_keys_of_the_config_the_deployment_allows(tmp_path):
    """By default: any key of the config (a dict field's entries included) but the fenced ones,
    each refused with its reason on the first line; an unknown key refused; the path params
    fixed to the deployment's values."""
    ok = ["ppr.alpha=0.3", "gate.min_ranked_share=0.99", "candidates.weights.ppr=2",
          "ingest.columns.user_id=uid", 'candidates.sources=["ppr"]']  # fmt: skip
    # No key of the config: one that does not exist, one a fenced key's prefix, no section.
    unknown = ["ppr.no_such=1", "rank.model_x=1"]
    # One item per fenced key (a dict field's entries: two of them, the JVM's code loaders).
    fenced = [
        (key, f"{key.replace('*', name)}=/tmp/x.jar")
        for key in FENCED
        for name in (["spark.jars", "spark.plugins"] if key.endswith("*") else [""])
    ]
    values = [("sets", [item]) for item in ok]
    values += [("sets", [item]) for _, item in fenced]
    values += [("sets", [item]) for item in unknown] + [("sets", ["ppr=1"])]
    values += [(name, "/etc") for name in PATH_PARAMS]
    info = _fence(tmp_path, values)
    checked = dict(zip([json.dumps(v) for v in values], info["checked"], strict=True))
    assert [checked[json.dumps(("sets", [item]))] for item in ok] == ["ok"] * len(ok)
    for key, item in fenced:
        why = checked[json.dumps(("sets", [item]))]
        assert why.startswith(f"'{item}' should not be valid under {{'pattern': "), why
        assert f"{key} is not settable from a trigger ({FENCED[key]})" in why, why
    for item in unknown:
        assert checked[json.dumps(("sets", [item]))] == (
            f"'{item}' is not valid under any of the given schemas"
        )
    assert checked[json.dumps(("sets", ["ppr=1"]))].startswith("'ppr=1' ")
    for name in PATH_PARAMS:
        default = info["defaults"][name]
        assert checked[json.dumps((name, "/etc"))] == f"'/etc' is not one of [{default!r}]"
    assert info["defaults"]["out"] == str(ROOT / "runs" / "airflow")
    assert info["defaults"]["config"] == ""


def test_the_deployment_widens_or_narrows_the_fence(tmp_path):
    env = {
        "WALKRANK_TRIGGER_SETTABLE": "ppr.*,!ppr.alpha,rank.model,out",
        "WALKRANK_OUT": "s3://bucket/runs",
        "WALKRANK_HISTORY": "s3://lake/history",
    }
    values = [
        ("sets", ["ppr.walks_per_node=5"]), ("sets", ["ppr.alpha=0.3"]),
        ("sets", ["gate.min_ranked_share=0.9"]), ("sets", ["rank.model=/models/ranker"]),
        ("sets", ["spark.conf.spark.jars=/x.jar"]),
        ("out", "/data/elsewhere"), ("history", "/data/elsewhere"),
        ("history", "s3://lake/history"),
    ]  # fmt: skip
    info = _fence(tmp_path, values, **env)
    assert info["defaults"]["out"] == "s3://bucket/runs"
    assert info["defaults"]["history"] == "s3://lake/history"
    got = info["checked"]
    assert got[0] == "ok" and got[3] == "ok" and got[5] == "ok" and got[7] == "ok", got
    assert "ppr.alpha is not settable from a trigger (WALKRANK_TRIGGER_SETTABLE)" in got[1]
    # Not named by any pattern: refused, a fenced key as any other.
    assert got[2] == "'gate.min_ranked_share=0.9' is not valid under any of the given schemas"
    assert got[4] == "'spark.conf.spark.jars=/x.jar' is not valid under any of the given schemas"
    assert got[6] == "'/data/elsewhere' is not one of ['s3://lake/history']"


def test_a_copied_log_loses_its_secrets(tmp_path):
    """The DAG's redaction (Airflow's venv, the fence's patterns) is WalkRank's own."""
    info = _fence(tmp_path, [])
    assert [n for n in range(1, 5) if f"SECRET{n}" in info["redacted"]] == []
    assert info["redacted"] == redact_text(LOG, secret_values(LOG_ENV))
    assert "spark.sql.shuffle.partitions=8" in info["redacted"]
    assert "max_new_tokens=48" in info["redacted"]


# Runs every stage task's execute() with a stub of the plan task's XCom: a plan that leaves
# the stage out, and no plan at all. Nothing is rendered or submitted: the check comes first.
PLANNED = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
dag = DagBag(sys.argv[1]).dags["walkrank_daily"]
class TI:
    def __init__(self, plan):
        self.plan = plan
    def xcom_pull(self, task_ids):
        return self.plan if task_ids == "plan" else None
out = {}
for task in dag.tasks:
    if not hasattr(task, "stage"):
        continue
    out_of_plan = {"stages": [{"name": task.stage, "planned": False, "reason": "why not"}]}
    for label, plan in (("out", out_of_plan), ("none", None)):
        try:
            task.execute({"ti": TI(plan), "run_id": "r"})
            out[f"{task.task_id} {label}"] = "ran"
        except (AirflowSkipException, AirflowFailException) as exc:
            out[f"{task.task_id} {label}"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def test_a_stage_out_of_the_plan_ends_skipped_with_its_reason(tmp_path):
    info = _probe(tmp_path, PLANNED, str(DAGS))
    gated = [n for n in DEFAULT_STAGES if n != READS_INPUT]
    assert set(info) == {f"{n} {label}" for n in gated for label in ("out", "none")}
    for name in gated:
        assert (
            info[f"{name} out"] == f"AirflowSkipException: {name} is not in the run's plan: why not"
        )
        # Without the plan task's XCom a stage fails rather than guess (no retry either).
        assert info[f"{name} none"].startswith("AirflowFailException: no plan"), info


def _json_out(stdout: str) -> list:
    """The JSON an Airflow CLI command printed after its log lines."""
    return json.loads(next(ln for ln in reversed(stdout.splitlines()) if ln.startswith("[")))


def _dags_test(airflow: str, env: dict, conf: dict, log: Path) -> tuple[dict[str, str], str, str]:
    """`airflow dags test` of day 2026-11-21 (logical date 2026-11-22) -> (each task's state,
    the run's state, its output, also kept in `log`)."""
    res = subprocess.run(
        [airflow, "dags", "test", "walkrank_daily", "2026-11-22", "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    out = res.stdout + res.stderr
    log.write_text(out)
    # Its exit code says whether the run failed, not why: the states come from Airflow's DB.
    listed = subprocess.run(
        [airflow, "dags", "list-runs", "walkrank_daily", "-o", "json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    (run,) = _json_out(listed.stdout)  # dags test replaces the day's earlier run
    states = subprocess.run(
        [airflow, "tasks", "states-for-dag-run", "walkrank_daily", run["run_id"], "-o", "json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert states.returncode == 0, states.stderr[-3000:]
    return {t["task_id"]: t["state"] for t in _json_out(states.stdout)}, run["state"], out


def _runs(airflow: str, env: dict) -> list[dict]:
    """The DAG's runs in Airflow's DB (none: the CLI prints no JSON list)."""
    listed = subprocess.run(
        [airflow, "dags", "list-runs", "walkrank_daily", "-o", "json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    return json.loads(next((ln for ln in listed.stdout.splitlines()[::-1] if ln.startswith("[")),
                           "[]"))  # fmt: skip


def _refused(airflow: str, env: dict, command: list[str], conf: dict, log: Path) -> str:
    """A trigger Airflow refuses (`dags test` or a real `dags trigger`): it fails, and the DAG
    has no run; -> its output."""
    res = subprocess.run(
        [airflow, "dags", *command, "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = res.stdout + res.stderr
    log.write_text(out)
    assert res.returncode != 0, out[-3000:]
    assert _runs(airflow, env) == [], out[-3000:]
    return out


def _asset_events(home: Path) -> list[tuple[str, str, dict]]:
    """(asset name, source task, extra) of every Asset event in Airflow's metadata DB."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT a.name, e.source_task_id, e.extra FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id ORDER BY e.id"
        ).fetchall()
    return [(name, task, json.loads(extra or "{}")) for name, task, extra in rows]


@pytest.mark.slow
def test_airflow_dags_test_runs_the_whole_dag(tmp_path):
    """Triggers with `sets` the fence refuses (a JVM setting, a path), through `dags test` and
    a real `dags trigger`: no run is created, no run folder. Then `airflow dags test` of day
    2026-11-21 with the default config (the deployment's paths, and a profile holding an S3
    secret, as is the environment): the plan, the stages it needs (Spark through the Spark
    provider, spark_default = local[2]) while the others end skipped with its reason (the Ray
    stages: no job reaches the head), the quality gate and its Asset event, and the day
    before's run (made here by the CLI from the same history) scored against the day's new
    events; the secrets in no file of the runs nor of Airflow's logs. Then the same day again
    with a gate bound the run breaches: the gate fails, and no second Asset event. In Airflow 3
    a run's logical date is the end of its interval: day D is logical date D + 1."""
    rng = random.Random(2)
    t0 = 1_763_000_000
    history = history_rows(rng, t0)
    new = [(f"u{u}", f"i{rng.randrange(40)}", t0 + 86_400 * 30 + u) for u in range(0, 50, 2)]
    # <history>/<day>: everything up to that day; the two days hold the same log, so the DAG's
    # run of the 21st must equal the CLI's run of the 20th.
    for day in ("2026-11-20", "2026-11-21"):
        write_csv(tmp_path / "history" / day / "events.csv", history)
    write_csv(tmp_path / "new_events" / "2026-11-21" / "events.csv", new)
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
    plan = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "plan", "--json", "--set", "eval.target=serve",
             *[a for s in SETS for a in ("--set", s)]],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )["plan"]  # fmt: skip
    skipped = {r["name"]: r["reason"] for r in plan["stages"] if not r["planned"]}
    ray_stages = {n for n, s in STAGES.items() if s.engine == "ray"}
    assert ray_stages and ray_stages <= set(skipped), skipped  # what the default plan says

    home = tmp_path / "airflow"
    airflow = str(AIRFLOW_PY.parent / "airflow")
    spark_bin = Path(sys.executable).parent  # spark-submit on PATH, as the provider wants
    # The deployment's profile holds an S3 secret (spark.conf), so does the environment.
    secrets = {"profile": f"secretprofile{os.getpid()}x{random.random()}",
               "env": f"secretenv{os.getpid()}x{random.random()}"}  # fmt: skip
    profile = tmp_path / "deploy.toml"
    profile.write_text(f'[spark.conf]\n"spark.hadoop.fs.s3a.secret.key" = "{secrets["profile"]}"\n')
    conf = {"format": "csv", "sets": DAG_SETS}
    with ray_head() as head:
        env = _airflow_env(
            home,
            PATH=f"{spark_bin}:{os.environ['PATH']}",
            WALKRANK_RAY_ADDRESS=head.job_server,
            WALKRANK_RAY_PYTHON=sys.executable,
            WALKRANK_HISTORY=str(tmp_path / "history"),
            WALKRANK_NEW_EVENTS=str(tmp_path / "new_events"),
            WALKRANK_OUT=str(runs),
            WALKRANK_CONFIG=str(profile),
            AWS_SECRET_ACCESS_KEY=secrets["env"],
            **head.auth,
        )
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        # Refused when the run would be created: through dags test, and a real trigger (the
        # DAG parsed into the DB first, as the DAG processor does).
        jars = {**conf, "sets": [*DAG_SETS, "spark.conf.spark.jars=/tmp/evil.jar"]}
        path = {**conf, "sets": [*DAG_SETS, "rank.model=/etc"]}
        dags_test = ["test", "walkrank_daily", "2026-11-22"]
        out = _refused(airflow, env, dags_test, jars, tmp_path / "refused-jars.log")
        refusal = "Invalid input for param sets: 'spark.conf.spark.jars=/tmp/evil.jar' should"
        assert f"{refusal} not be valid under" in out, out[-3000:]
        assert "spark.conf.* is not settable from a trigger" in out
        out = _refused(airflow, env, dags_test, path, tmp_path / "refused-path.log")
        assert "Invalid input for param sets: 'rank.model=/etc' should not be valid" in out
        assert "rank.model is not settable from a trigger (a path" in out
        parse = subprocess.run([airflow, "dags", "reserialize"], env=env, capture_output=True,
                               text=True)  # fmt: skip
        assert parse.returncode == 0, parse.stderr[-3000:]
        trigger = ["trigger", "walkrank_daily"]
        out = _refused(airflow, env, trigger, jars, tmp_path / "trigger-jars.log")
        assert "'spark.conf.spark.jars=/tmp/evil.jar' should not be valid under" in out
        out = _refused(airflow, env, trigger, {"out": "/etc"}, tmp_path / "trigger-out.log")
        assert "Invalid input for param out: '/etc' is not one of" in out
        assert not (runs / "2026-11-21").exists()  # no stage ran: the day's run has no folder

        tasks, state, out = _dags_test(airflow, env, conf, tmp_path / "dags-test.log")
        # The stages out of the plan ended skipped with its reason; everything else succeeded.
        assert state == "success", (tasks, out[-6000:])
        assert tasks == {
            **dict.fromkeys(["plan", *DEFAULT_STAGES, "quality_gate", "evaluate_previous"],
                            "success"),
            **dict.fromkeys(skipped, "skipped"),
        }, tasks  # fmt: skip
        for name, reason in skipped.items():
            assert f"{name} is not in the run's plan: {reason}" in out, (name, out[-6000:])
        # The gate passed and announced the run: one Asset event, with its path and day.
        assert "gate: passed" in out, out[-6000:]
        events = _asset_events(home)
        assert events == [
            ("walkrank_rankings", "quality_gate",
             {"path": str(runs / "2026-11-21"), "day": "2026-11-21"}),
        ], events  # fmt: skip

        # The same day, with a bound the run breaches (50 of 51 users ranked, 0.98 < 0.99):
        # the committed stages skip, the gate fails with the reason and announces nothing.
        breach = {**conf, "sets": [*DAG_SETS, "gate.min_ranked_share=0.99"]}
        tasks, state, out = _dags_test(airflow, env, breach, tmp_path / "dags-test-breach.log")
        assert state == "failed" and tasks["quality_gate"] == "failed", (tasks, out[-6000:])
        assert "50 of 51 active users ranked" in out and "< gate.min_ranked_share 0.99" in out
        assert {t for t, s in tasks.items() if s not in ("success", "skipped")} == {
            "quality_gate"
        }, tasks
        assert len(_asset_events(home)) == 1

        # No Ray job reached the head: the Ray stages were skipped before submitting one.
        with head_auth(head):
            from ray.job_submission import JobSubmissionClient

            assert JobSubmissionClient(head.job_server).list_jobs() == []

    run_dir = runs / "2026-11-21"
    assert "<redacted>" in (run_dir / "config.toml").read_text()  # the profile's secret named
    # Not one byte of the secrets in a file of the runs or of Airflow's logs, nor in what the
    # `dags test` runs printed (each task's log).
    files = [p for d in (runs, home / "logs", tmp_path) for p in d.rglob("*") if p.is_file()]
    files = [p for p in files if p != profile]
    leaks = [(str(p), name) for p in files for name, secret in secrets.items()
             if secret.encode() in p.read_bytes()]  # fmt: skip
    assert leaks == []
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
        # The same code, data, master (local[2]) and partitioning: equal to the bit.
        assert_frame_equal(a, b, check_exact=True)
