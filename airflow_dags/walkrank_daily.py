"""walkrank_daily: each day a serve run of WalkRank, then the previous day's run scored.

One task per stage of WalkRank's registry, then `evaluate_previous`. The stages come from the
spec `walkrank plan --json` prints, committed as airflow_dags/walkrank_stages.json (`make
dag-spec` writes it; tests/unit/test_jobs.py fails when it is stale): each stage's engine, its
upstream stages (the edges) and whether it reads the run's input. No stage name is written here.
Every task runs the one job entry point, `jobs/stage_job.py <stage> ...`:
- Spark stages (and driver-only ones, engine "local") are `SparkSubmitOperator`s: the master
  comes from the `spark_default` connection (e.g. AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type":
  "spark", "host": "spark://head", "port": 7077}'; `spark-submit` on the worker's PATH, as the
  Spark provider requires). Executors get WalkRank's environment from the archive `make dist`
  builds (`--archives walkrank-env.tar.gz#env`, `spark.pyspark.python=./env/bin/python`).
- Ray stages (engine "ray": the embeddings and the LLM stages) are Ray jobs, submitted to the
  cluster's job server with the Ray Jobs API (`JobSubmissionClient`); the code travels in the
  job's runtime env.
- The run is a serve run (`eval.target=serve`: every event up to the day is used; rankings
  are each user's next items). Its id is the day D its data interval [D, D + 1) covers
  (`2026-11-25`; the run starts when D ends, and Airflow 3 gives it the logical date D + 1); a
  run triggered without a logical date has no interval and uses its Airflow run id, path-safe.
  Its input is the history as of that day, `<history>/<day>`: a backfill of day D reads D's
  history, not today's.
- The stage that reads the input (`reads_input`) gets `--input=<history>/<day>` and `--format`.
- `evaluate_previous`, after the stage that writes `metrics`: that stage's job with `--against`
  (`walkrank evaluate <out>/<day - 1> --against <new_events>/<day>`), how yesterday's
  recommendations did on today's events (skipped, with a message, when that run does not
  exist).
- The task of the stage that writes the final `rankings` (the last writer in order) has
  `outlets=[RANKINGS]`: downstream DAGs scheduled on that Asset start when new rankings exist.

No run parameter is ever put into a shell string: every parameter is one element of an argv
list (spark-submit's application arguments, as `--flag=value`, the `--set` list as one JSON
argument) or, for a Ray job, an element of a JSON list in the job's environment (its
entrypoint is a fixed command). The parameters are also checked by JSON-schema patterns when
a run is triggered.

Nothing of WalkRank is imported here: Airflow lives in its own virtual environment
(`make airflow-setup`), and the tasks call the project's interpreter.

Environment (read when the DAG is parsed; deployment settings, not run parameters):
    WALKRANK_HOME         the repository: jobs/stage_job.py (the spark-submit application),
                          the code shipped to Ray and airflow_dags/walkrank_stages.json, the
                          stage spec (default: the folder above this file)
    WALKRANK_PYTHON       the Spark driver's Python, with WalkRank installed (client mode;
                          default: $WALKRANK_HOME/.venv/bin/python)
    WALKRANK_ENV_ARCHIVE  the executors' environment, dist/walkrank-env.tar.gz (`make dist`);
                          empty: executors use WALKRANK_PYTHON (local mode, one machine)
    WALKRANK_JARS         the folder of the S3A jars shipped with --jars (`make jars`; default
                          $WALKRANK_HOME/.venv/share/walkrank/jars); "none": the cluster's own
                          connector. `out`, `history` and `new_events` may be s3:// URIs,
                          passed through untouched; credentials come from the workers' AWS
                          environment, never from a parameter.
    WALKRANK_RAY_ADDRESS  the Ray job server, e.g. http://head:8265 (RAY_AUTH_TOKEN, when the
                          cluster uses token auth, is read from the worker's environment)
    WALKRANK_RAY_PYTHON   the Python on the Ray nodes that has walkrank[llm]'s dependencies
                          (default: python)
Params (per run, `--conf` / the trigger form): history, new_events, out, config, format, sets.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, BaseOperator, Param
from airflow.timetables.interval import CronDataIntervalTimetable

HOME = Path(os.environ.get("WALKRANK_HOME", Path(__file__).resolve().parents[1]))
PYTHON = os.environ.get("WALKRANK_PYTHON", str(HOME / ".venv" / "bin" / "python"))
ENV_ARCHIVE = os.environ.get("WALKRANK_ENV_ARCHIVE", "")
# Hadoop's S3A connector and the AWS SDK modules it needs (`make jars`), shipped with --jars so
# executors read and write s3a:// without anything installed; "none": the cluster's own
# connector (EMR, Dataproc).
JARS_DIR = os.environ.get("WALKRANK_JARS", str(HOME / ".venv" / "share" / "walkrank" / "jars"))
JARS = (
    ",".join(sorted(str(p) for p in Path(JARS_DIR).glob("*.jar")))
    if JARS_DIR != "none" and Path(JARS_DIR).is_dir()
    else ""
)
RAY_ADDRESS = os.environ.get("WALKRANK_RAY_ADDRESS", "http://127.0.0.1:8265")
RAY_PYTHON = os.environ.get("WALKRANK_RAY_PYTHON", "python")
ARGS_ENV = "WALKRANK_JOB_ARGS"  # jobs/stage_job.py reads a Ray job's arguments from it
JOB = HOME / "jobs" / "stage_job.py"  # the one job: its first argument is the stage
CODE = ("pipelines", "udfs", "schemas", "jobs")  # shipped to a Ray job as py_modules

# Names the daily rankings for the DAGs that consume them (schedule=[RANKINGS]); the table of a
# run is <out>/<day>/rankings.
RANKINGS = Asset(name="walkrank_rankings", uri="file:///walkrank/rankings")

# The stage registry as data (`walkrank plan --json`), read from the WalkRank the jobs run: a
# file, so that parsing the DAG starts no WalkRank interpreter.
SPEC_FORMAT = 1
SPEC = json.loads((HOME / "airflow_dags" / "walkrank_stages.json").read_text())
if SPEC.get("format") != SPEC_FORMAT:
    raise ValueError(
        f"walkrank_stages.json: format {SPEC.get('format')}, this DAG reads {SPEC_FORMAT}"
    )
STAGES: list[dict[str, Any]] = SPEC["stages"]  # in pipeline order


def writer(table: str) -> str:
    """The stage that writes `table` last in pipeline order."""
    return [s["name"] for s in STAGES if table in s["writes"]][-1]


def direct_upstream() -> dict[str, list[str]]:
    """Each stage's upstream stages less those another of them already follows: the same order
    with fewer edges in Airflow's graph view (the spec lists every stage writing a read table)."""
    ancestors: dict[str, set[str]] = {}
    direct: dict[str, list[str]] = {}
    for s in STAGES:  # pipeline order: a stage's upstream ones come before it
        up = s["upstream"]
        ancestors[s["name"]] = set(up).union(*(ancestors.get(u, set()) for u in up))
        direct[s["name"]] = [u for u in up if not any(u in ancestors.get(v, ()) for v in up)]
    return direct


RANKED = writer("rankings")  # its task carries the RANKINGS outlet
SCORED = writer("metrics")  # its job scores the day before's run (--against)

# A path: no leading '-', no whitespace, quotes or shell characters (s3a://, hdfs:// are fine).
PATH = r"^[A-Za-z0-9_/.][A-Za-z0-9_/.:=@+-]*$"
SET = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+=[^\n\r]*$"


def run_day(data_interval_start: Any, run_id: str) -> str:
    """The run's id: the day its data interval starts; without one, the run id, path-safe."""
    if data_interval_start:
        return data_interval_start.strftime("%Y-%m-%d")
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


def previous_day(data_interval_start: Any) -> str:
    """The id of the day before's run; a run without a data interval has none ('none')."""
    if data_interval_start:
        return (data_interval_start - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    return "none"


DAY = "{{ run_day(data_interval_start, run_id) }}"
RUN_DIR = "--run-dir={{ params.out }}/" + DAY
COMMON = [
    RUN_DIR,
    "--config={{ params.config }}",  # empty: the defaults
    "--sets-json={{ (['eval.target=serve'] + params.sets) | tojson }}",
]
INGEST = ["--input={{ params.history }}/" + DAY, "--format={{ params.format }}"]
AGAINST = [
    "--run-dir={{ params.out }}/{{ previous_day(data_interval_start) }}",
    "--against={{ params.new_events }}/" + DAY,
    "--format={{ params.format }}",
]


def spark_task(task_id: str, stage: str, args: list[str], **kw: Any) -> SparkSubmitOperator:
    conf = {"spark.pyspark.driver.python": PYTHON, "spark.pyspark.python": PYTHON}
    if ENV_ARCHIVE:
        conf["spark.pyspark.python"] = "./env/bin/python"
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id="spark_default",
        application=str(JOB),
        application_args=[stage, *args],
        archives=f"{ENV_ARCHIVE}#env" if ENV_ARCHIVE else None,
        jars=JARS or None,
        conf=conf,
        name=f"walkrank-{task_id}",
        **kw,
    )


class RayJobOperator(BaseOperator):
    """Run `jobs/stage_job.py <stage>` as a Ray job: submitted with the Ray Jobs API, polled to
    the end, its log copied into the task's log; a failed job fails the task, a killed task
    stops the job. The entrypoint is a fixed command; the arguments are a JSON list in the
    job's env."""

    template_fields = ("job_args",)

    def __init__(self, *, stage: str, job_args: list[str], poll_seconds: float = 2.0, **kw):
        super().__init__(**kw)
        self.stage = stage
        self.job_args = job_args
        self.poll_seconds = poll_seconds
        self._client: Any = None
        self._submission_id: str | None = None

    def runtime_env(self) -> dict[str, Any]:
        return {
            "py_modules": [str(HOME / name) for name in CODE],
            "env_vars": {ARGS_ENV: json.dumps(self.job_args)},
        }

    def entrypoint(self) -> str:
        return f"{shlex.quote(RAY_PYTHON)} -m jobs.stage_job {shlex.quote(self.stage)}"

    def execute(self, context: Any) -> str:
        from ray.job_submission import JobStatus, JobSubmissionClient

        self._client = client = JobSubmissionClient(RAY_ADDRESS)
        self._submission_id = sid = client.submit_job(
            entrypoint=self.entrypoint(),
            runtime_env=self.runtime_env(),
            submission_id=f"walkrank-{self.stage}-{uuid.uuid4().hex[:12]}",
            metadata={"dag_id": self.dag_id, "task_id": self.task_id},
        )
        self.log.info("submitted Ray job %s to %s: %s", sid, RAY_ADDRESS, self.entrypoint())
        terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
        while (status := client.get_job_status(sid)) not in terminal:
            time.sleep(self.poll_seconds)
        self.log.info("Ray job %s %s; its log:\n%s", sid, status, client.get_job_logs(sid))
        if status != JobStatus.SUCCEEDED:
            raise RuntimeError(f"Ray job {sid} ({self.stage}) ended {status}")
        return sid

    def on_kill(self) -> None:
        if self._client is not None and self._submission_id is not None:
            self._client.stop_job(self._submission_id)


with DAG(
    dag_id="walkrank_daily",
    description="WalkRank serve run: ingest -> graph/PPR/neighbors -> candidates -> LLM -> rank",
    # Runs span a day: [D, D + 1), run after it ends (Airflow 3's plain "@daily" is a point in
    # time, with no interval to take the day's input from).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    user_defined_macros={"run_day": run_day, "previous_day": previous_day},
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(hours=3),
    },
    params={
        "history": Param(
            str(HOME / "data" / "history"),
            type="string",
            pattern=PATH,
            description="<history>/<YYYY-MM-DD>: every event up to the end of that day",
        ),
        "new_events": Param(
            str(HOME / "data" / "new_events"),
            type="string",
            pattern=PATH,
            description="<new_events>/<YYYY-MM-DD>: the events of that day alone",
        ),
        "out": Param(str(HOME / "runs" / "airflow"), type="string", pattern=PATH),
        "config": Param(
            "",
            type="string",
            pattern=r"^$|" + PATH,
            description="TOML profile; empty for the defaults",
        ),
        "format": Param(
            "auto",
            type="string",
            enum=["auto", "csv", "tsv", "parquet", "jsonl", "movielens", "recbole", "sequences"],
        ),
        "sets": Param(
            [],
            type="array",
            items={"type": "string", "pattern": SET},
            description="config overrides, section.key=value",
        ),
    },
    tags=["walkrank"],
) as dag:
    tasks: dict[str, BaseOperator] = {}
    for row in STAGES:
        stage = row["name"]
        args = COMMON + (INGEST if row["reads_input"] else [])
        outlets = [RANKINGS] if stage == RANKED else []
        if row["engine"] == "ray":
            tasks[stage] = RayJobOperator(
                task_id=stage, stage=stage, job_args=args, outlets=outlets
            )
        else:
            tasks[stage] = spark_task(stage, stage, args, outlets=outlets)
    for stage, upstream in direct_upstream().items():
        for up in upstream:
            tasks[up] >> tasks[stage]
    tasks[SCORED] >> spark_task("evaluate_previous", SCORED, AGAINST)
