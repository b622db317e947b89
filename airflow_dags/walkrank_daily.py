"""walkrank_daily: each day a serve run of WalkRank that does what its plan says, a quality
gate before the rankings are announced, and the previous day's run scored (docs/deploy.md).

- One task per stage of the registry, from the spec `walkrank plan --json` prints, committed as
  airflow_dags/walkrank_stages.json (`make dag-spec`): no stage name is written here. The
  input stage first, then `plan` (`walkrank plan --json --run-dir <out>/<day>`, its XCom the
  plan); a stage the plan leaves out ends as skipped with the plan's reason (downstream tasks
  still run; a failed upstream stops them). Each runs `jobs/stage_job.py <stage>` (= `walkrank
  run --stages <stage>`): Spark and driver-only stages by spark-submit (`spark_default`), Ray
  stages as Ray jobs under a submission id of (run dir, stage), which a retry finds.
- `quality_gate`, after the stage writing the final `rankings`: `walkrank gate <out>/<day>
  --previous <out>/<day - 1>`; it carries the RANKINGS outlet, so a breach emits nothing.
- `evaluate_previous`: `walkrank evaluate <out>/<day - 1> --against <new_events>/<day>`,
  independent of today's run.

The run's id is the day D its data interval [D, D + 1) covers (Airflow 3's logical date is
D + 1); without an interval, its run id, path-safe. Its input is `<history>/<day>`. `refit`:
"always", or the weekday whose runs fit the ranker (the others pass rank.model=latest).
No run parameter is ever put into a shell string: each is one argv element, or an element of
a Ray job's JSON argument list; JSON-schema patterns and enums check them at trigger time.
Nothing of WalkRank is imported here: the tasks call the project's interpreter.

Environment (read when the DAG is parsed): WALKRANK_HOME (the repository), WALKRANK_PYTHON (the
Python with WalkRank: the Spark driver, `plan`, `quality_gate`), WALKRANK_ENV_ARCHIVE (the
executors' environment, `make dist`; empty: WALKRANK_PYTHON), WALKRANK_JARS (the S3A jars,
`make jars`; "none": the cluster's), WALKRANK_CLASS_ARCHIVE (the driver's class archive, `make
setup`; "none": without), WALKRANK_RAY_ADDRESS (the Ray job server; RAY_AUTH_TOKEN
from the environment), WALKRANK_RAY_PYTHON (the Ray nodes' Python); what a trigger may set:
walkrank_trigger.py (WALKRANK_TRIGGER_SETTABLE, WALKRANK_HISTORY, _NEW_EVENTS, _OUT, _CONFIG).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, BaseOperator, Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from walkrank_trigger import fence, path_param, redacted, sets_item

HOME = Path(os.environ.get("WALKRANK_HOME", Path(__file__).resolve().parents[1]))
PYTHON = os.environ.get("WALKRANK_PYTHON", str(HOME / ".venv" / "bin" / "python"))
ENV_ARCHIVE = os.environ.get("WALKRANK_ENV_ARCHIVE", "")
# Hadoop's S3A connector and the AWS SDK modules it needs (`make jars`), shipped with --jars:
# executors read and write s3a:// with nothing installed; "none": the cluster's own (EMR).
JARS_DIR = os.environ.get("WALKRANK_JARS", str(HOME / ".venv" / "share" / "walkrank" / "jars"))
JARS = (
    ",".join(sorted(str(p) for p in Path(JARS_DIR).glob("*.jar")))
    if JARS_DIR != "none" and Path(JARS_DIR).is_dir()
    else ""
)
# The Spark driver's class archive (`make setup`, pipelines/class_archive_recording.py): a driver
# spark-submit starts on this machine (client mode) maps it. A driver elsewhere (cluster mode)
# or on another JDK finds no matching file and starts without it; "none": never. The options
# are spark_session.class_archive_options()'s, written out: nothing of WalkRank is imported here.
CLASS_ARCHIVE = os.environ.get(
    "WALKRANK_CLASS_ARCHIVE", str(HOME / ".venv" / "share" / "walkrank" / "spark-classes.jsa")
)
DRIVER_JAVA_OPTIONS = (
    f"-XX:SharedArchiveFile={CLASS_ARCHIVE} -Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"
    if CLASS_ARCHIVE != "none" and Path(CLASS_ARCHIVE).is_file()
    else ""
)
RAY_ADDRESS = os.environ.get("WALKRANK_RAY_ADDRESS", "http://127.0.0.1:8265")
RAY_PYTHON = os.environ.get("WALKRANK_RAY_PYTHON", "python")
MONITOR_GRACE_S = 2.0  # twice Ray's job monitor period: see RayJobOperator._wait_for_old_monitor
ARGS_ENV = "WALKRANK_JOB_ARGS"  # jobs/stage_job.py reads a Ray job's arguments from it
JOB = HOME / "jobs" / "stage_job.py"  # the one job: its first argument is the stage
CODE = ("pipelines", "udfs", "schemas", "jobs")  # shipped to a Ray job as py_modules
PLAN_TASK, GATE_TASK = "plan", "quality_gate"
BREACH = "error: quality gate breached"  # `walkrank gate`'s words for a breach (exit 1)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Names the daily rankings for the DAGs that consume them (schedule=[RANKINGS]); each event's
# extra says which run: {"path": <out>/<day>, "day": <day>}.
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
FENCE, SETTABLE = fence(HOME / "airflow_dags" / "walkrank_fence.json", os.environ)


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


RANKED = writer("rankings")  # the quality gate follows it
SCORED = writer("metrics")  # its job scores the day before's run (--against)

# A path: no leading '-', no whitespace, quotes or shell characters (s3a://, hdfs:// are fine).
PATH = r"^[A-Za-z0-9_/.][A-Za-z0-9_/.:=@+-]*$"
SET = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+=[^\n\r]*$"
REFIT = "fit the ranker in every run, or in runs of this weekday only (the others: latest model)"
FORMATS = ["auto", "csv", "tsv", "parquet", "jsonl", "movielens", "recbole", "sequences"]


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


def model_sets(refit: str, data_interval_start: Any) -> list[str]:
    """`rank.model=latest` on a day that is not the refit day: the run ranks with the newest
    committed model under `out` (WalkRank fits one when there is none). Anything but a weekday
    name, or a run without a day, fits: fitting is never wrong, only slower."""
    if refit not in WEEKDAYS or not data_interval_start:
        return []
    return [] if WEEKDAYS[data_interval_start.weekday()] == refit else ["rank.model=latest"]


DAY = "{{ run_day(data_interval_start, run_id) }}"
RUN_DIR = "{{ params.out }}/" + DAY
PREVIOUS = "{{ params.out }}/{{ previous_day(data_interval_start) }}"
# The run's --set list; the params' sets come last, so they win over the refit's.
SETS = (
    "{{ (['eval.target=serve'] + model_sets(params.refit, data_interval_start) + params.sets)"
    " | tojson }}"
)
COMMON = ["--run-dir=" + RUN_DIR, "--config={{ params.config }}", "--sets-json=" + SETS]
INGEST = ["--input={{ params.history }}/" + DAY, "--format={{ params.format }}"]
AGAINST = ["--run-dir=" + PREVIOUS, "--against={{ params.new_events }}/" + DAY,
           "--format={{ params.format }}"]  # fmt: skip


def walkrank(task: BaseOperator, argv: list[str]) -> subprocess.CompletedProcess:
    """Run the `walkrank` CLI of the project's interpreter (an argv list, no shell); its stderr
    (the CLI's messages) goes to the task's log."""
    res = subprocess.run(
        [PYTHON, "-m", "pipelines.cli", *argv], cwd=HOME, capture_output=True, text=True
    )
    res.stderr = redacted(res.stderr, FENCE)  # copied into the task's log, and into errors
    if res.stderr.strip():
        task.log.info("walkrank %s:\n%s", argv[0], res.stderr.strip()[-20_000:])
    return res


class PlanOperator(BaseOperator):
    """`walkrank plan --json --run-dir <out>/<day>` of the run's config and sets (XCom: the plan).
    After the input stage: `rank.model = latest` is chosen against the run's committed events."""

    template_fields = ("run_dir", "config", "sets")

    def __init__(self, *, run_dir: str, config: str, sets: str, **kw):
        super().__init__(**kw)
        self.run_dir, self.config, self.sets = run_dir, config, sets

    def argv(self) -> list[str]:
        sets = [f"--set={s}" for s in json.loads(self.sets)]
        return ["plan", "--json", f"--run-dir={self.run_dir}", f"--config={self.config}", *sets]

    def execute(self, context: Any) -> dict[str, Any]:
        res = walkrank(self, self.argv())
        if res.returncode != 0:
            raise RuntimeError(f"walkrank plan exited {res.returncode}: {res.stderr[-2000:]}")
        plan = json.loads(res.stdout)["plan"]
        for row in plan["stages"]:
            self.log.info("%s: %s", row["name"], "planned" if row["planned"] else row["reason"])
        return plan


def skip_unless_planned(context: Any, stage: str) -> None:
    """End the task as skipped, with the plan's reason, when the run's plan leaves `stage` out."""
    plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
    if not plan:
        raise AirflowFailException(f"no plan: task {PLAN_TASK!r} of this run pushed none")
    rows = {r["name"]: r for r in plan["stages"]}
    if stage not in rows:
        raise AirflowFailException(
            f"stage {stage!r} is not in the run's plan: walkrank_stages.json is not the "
            "registry of the WalkRank the tasks run (`make dag-spec`)"
        )
    if not rows[stage]["planned"]:
        raise AirflowSkipException(f"{stage} is not in the run's plan: {rows[stage]['reason']}")


class SparkStageOperator(SparkSubmitOperator):
    """spark-submit of `jobs/stage_job.py <stage>`, when the run's plan has the stage."""

    def __init__(self, *, stage: str, **kw):
        super().__init__(**kw)
        self.stage = stage

    def execute(self, context: Any) -> Any:
        skip_unless_planned(context, self.stage)
        return super().execute(context)


def spark_task(stage: str, args: list[str], cls: type = SparkStageOperator, **kw):
    conf = {"spark.pyspark.driver.python": PYTHON, "spark.pyspark.python": PYTHON}
    if ENV_ARCHIVE:
        conf["spark.pyspark.python"] = "./env/bin/python"
    if DRIVER_JAVA_OPTIONS:
        conf["spark.driver.extraJavaOptions"] = DRIVER_JAVA_OPTIONS
    if cls is SparkStageOperator:
        kw["stage"] = stage
    return cls(
        conn_id="spark_default",
        application=str(JOB),
        application_args=[stage, *args],
        archives=f"{ENV_ARCHIVE}#env" if ENV_ARCHIVE else None,
        jars=JARS or None,
        conf=conf,
        name=f"walkrank-{kw['task_id']}",
        **kw,
    )


def ray_job(client: Any, sid: str) -> Any:
    """The head's job with submission id `sid` (JobDetails), None when it has none."""
    try:
        return client.get_job_info(sid)
    except RuntimeError as exc:  # Ray's client raises it for any failed request
        if "status code 404" in str(exc) or "does not exist" in str(exc):
            return None
        raise


class RayJobOperator(BaseOperator):
    """Run `jobs/stage_job.py <stage>` as a Ray job, when the run's plan has the stage: found
    or submitted under the submission id of (run dir, stage), polled to the end, its log copied
    into the task's log; a failed job fails the task, a killed task stops the job. The
    entrypoint is a fixed command; the arguments are a JSON list in the job's env."""

    template_fields = ("job_args", "run_dir")

    def __init__(self, *, stage: str, run_dir: str, job_args: list[str], poll_seconds=2.0, **kw):
        super().__init__(**kw)
        self.stage, self.run_dir, self.job_args = stage, run_dir, job_args
        self.poll_seconds = poll_seconds
        self._client: Any = None
        self._submission_id: str | None = None

    def submission_id(self) -> str:
        """The same in every try of the run's stage (Ray takes [A-Za-z0-9_-] as it is)."""
        return f"walkrank-{self.stage}-{hashlib.sha256(self.run_dir.encode()).hexdigest()[:16]}"

    def runtime_env(self) -> dict[str, Any]:
        return {
            "py_modules": [str(HOME / name) for name in CODE],
            "env_vars": {ARGS_ENV: json.dumps(self.job_args)},
        }

    def entrypoint(self) -> str:
        return f"{shlex.quote(RAY_PYTHON)} -m jobs.stage_job {shlex.quote(self.stage)}"

    def execute(self, context: Any) -> str:
        skip_unless_planned(context, self.stage)
        from ray.job_submission import JobSubmissionClient

        self._client = client = JobSubmissionClient(RAY_ADDRESS)
        self._submission_id = sid = self.submission_id()
        status = self._find_or_submit(client, sid, context["run_id"])
        while status not in ("SUCCEEDED", "FAILED", "STOPPED"):
            time.sleep(self.poll_seconds)
            status = client.get_job_status(sid)
        self.log.info("Ray job %s %s:\n%s", sid, status, redacted(client.get_job_logs(sid), FENCE))
        if status != "SUCCEEDED":
            job = ray_job(client, sid)
            why = (job.message if job is not None else "") or ""
            raise RuntimeError(
                f"Ray job {sid} ({self.stage}) ended {status}: {redacted(why, FENCE)[-2000:]}"
            )
        return sid

    def _find_or_submit(self, client: Any, sid: str, run_id: str) -> str:
        """The status of the job `sid`: an earlier try's when it is pending, running or
        succeeded in this Airflow run; else a job submitted now (a failed or stopped one, or
        one of another Airflow run of the same run dir, deleted first: one job per id)."""
        job = ray_job(client, sid)
        stale = job is not None and (
            job.status in ("FAILED", "STOPPED")
            or (job.status == "SUCCEEDED" and (job.metadata or {}).get("airflow_run") != run_id)
        )
        if stale:
            self.log.info("Ray job %s ended %s before: deleted, submitted again", sid, job.status)
            self._wait_for_old_monitor(sid)
            client.delete_job(sid)
        elif job is not None:
            then = "its result is taken" if job.status == "SUCCEEDED" else "waiting for it"
            self.log.info("Ray job %s, submitted earlier, is %s: %s", sid, job.status, then)
            return job.status
        try:
            client.submit_job(
                entrypoint=self.entrypoint(),
                runtime_env=self.runtime_env(),
                submission_id=sid,
                metadata={"dag_id": self.dag_id, "task_id": self.task_id, "airflow_run": run_id},
            )
            self.log.info("submitted Ray job %s to %s: %s", sid, RAY_ADDRESS, self.entrypoint())
        except RuntimeError as exc:
            if "already exists" not in str(exc):
                raise
            self.log.info("Ray job %s was submitted meanwhile (another try): waiting for it", sid)
        return client.get_job_status(sid)

    def _wait_for_old_monitor(self, sid: str) -> None:
        """Until the ended job's monitor on the head is gone, before its job is deleted. That
        monitor pings the job's supervisor actor once a second until the ping fails, and then
        marks FAILED whatever holds the id unless it finds a terminal job: a deleted id comes
        back as a failed job, and a job resubmitted under it is failed with "Job supervisor
        actor died". So: wait until no supervisor of the id is alive, then for the monitor's
        next poll."""
        from ray.util.state import list_actors

        name = f"_ray_internal_job_actor_{sid}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            actors = list_actors(address=RAY_ADDRESS, filters=[("name", "=", name)], limit=100)
            if all(a.state == "DEAD" for a in actors):
                break
            time.sleep(0.5)
        else:
            self.log.warning("the supervisor of Ray job %s is still alive after 120 s", sid)
        time.sleep(MONITOR_GRACE_S)

    def on_kill(self) -> None:
        if self._client is not None and self._submission_id is not None:
            self._client.stop_job(self._submission_id)


class QualityGateOperator(BaseOperator):
    """`walkrank gate <run> --previous <run of the day before>`: a breach (exit 1) fails the
    task without a retry, so its outlet emits nothing; anything else failing is retried. On
    success the outlet's event carries the run's path and day."""

    template_fields = ("run_dir", "previous", "day")

    def __init__(self, *, run_dir: str, previous: str, day: str, **kw):
        super().__init__(**kw)
        self.run_dir, self.previous, self.day = run_dir, previous, day

    def argv(self) -> list[str]:
        return ["gate", f"--previous={self.previous}", "--", self.run_dir]

    def execute(self, context: Any) -> dict[str, str]:
        res = walkrank(self, self.argv())
        self.log.info("walkrank gate:\n%s", redacted(res.stdout, FENCE))
        if res.returncode == 1 and BREACH in res.stderr:
            raise AirflowFailException(res.stderr[res.stderr.index(BREACH) :].strip())
        if res.returncode != 0:
            raise RuntimeError(f"walkrank gate exited {res.returncode}: {res.stderr[-2000:]}")
        extra = {"path": self.run_dir, "day": self.day}
        for asset in self.outlets:
            context["outlet_events"][asset].extra = extra
        return extra


with DAG(
    dag_id="walkrank_daily",
    description="WalkRank serve run: plan -> the planned stages -> quality gate -> Asset",
    # Runs span a day: [D, D + 1), run after it ends (Airflow 3's plain "@daily" is a point in
    # time, with no interval to take the day's input from).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    user_defined_macros={
        "run_day": run_day,
        "previous_day": previous_day,
        "model_sets": model_sets,
    },
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(hours=3),
    },
    params={
        "history": path_param("history", HOME / "data" / "history", SETTABLE, PATH),
        "new_events": path_param("new_events", HOME / "data" / "new_events", SETTABLE, PATH),
        "out": path_param("out", HOME / "runs" / "airflow", SETTABLE, PATH),
        "config": path_param("config", "", SETTABLE, r"^$|" + PATH),
        "format": Param("auto", type="string", enum=FORMATS),
        "sets": Param([], type="array", items=sets_item(FENCE, SETTABLE, SET)),
        "refit": Param("always", type="string", enum=["always", *WEEKDAYS], description=REFIT),
    },
    tags=["walkrank"],
) as dag:
    plan = PlanOperator(task_id=PLAN_TASK, run_dir=RUN_DIR, config="{{ params.config }}", sets=SETS)
    tasks: dict[str, BaseOperator] = {}
    for row in STAGES:
        stage = row["name"]
        # A skipped stage (out of the plan) must not skip the stages after it.
        kw = {"task_id": stage, "trigger_rule": "none_failed"}
        if row["reads_input"]:  # before the plan (PlanOperator)
            tasks[stage] = spark_task(stage, COMMON + INGEST, SparkSubmitOperator, task_id=stage)
            tasks[stage] >> plan
        elif row["engine"] == "ray":
            tasks[stage] = RayJobOperator(stage=stage, run_dir=RUN_DIR, job_args=COMMON, **kw)
        else:
            tasks[stage] = spark_task(stage, COMMON, **kw)
    for stage, upstream in direct_upstream().items():
        for up in upstream:
            tasks[up] >> tasks[stage]
        if stage not in plan.upstream_task_ids and not {*upstream} - plan.upstream_task_ids:
            plan >> tasks[stage]
    gate = {"run_dir": RUN_DIR, "previous": PREVIOUS, "day": DAY, "outlets": [RANKINGS]}
    tasks[RANKED] >> QualityGateOperator(task_id=GATE_TASK, trigger_rule="none_failed", **gate)
    # Yesterday's run and today's new events only: a failure of today's run loses no score.
    spark_task(SCORED, AGAINST, cls=SparkSubmitOperator, task_id="evaluate_previous")
