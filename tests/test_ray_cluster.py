"""The LLM stages as Ray jobs: a `ray start --head` on 127.0.0.1 runs `jobs/stage_job.py
<stage>` submitted with the Ray Jobs API, the way the DAG submits it (a fixed entrypoint, the code as
`py_modules` and the arguments as a JSON list in the runtime env); each job's driver joined the
head's cluster (the head knows it by a Ray job id, and lists the actors it ran there: a job
that started a Ray of its own would have neither); the tables equal a local-Ray run's,
exactly. The DAG's RayJobOperator (run in Airflow's venv) survives a retry: killed
mid-job and run again, it waits for the job it submitted; a failed job under its submission id
is deleted and submitted again; the head ends with one job per id. The head's processes are
stopped afterwards (only this test's)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from tests.llm_fixtures import build_tiny_model, write_llm_run
from tests.ray_head import head_auth, ray_head

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("summaries", "llm_scores")
CODE = ("pipelines", "udfs", "schemas", "jobs")
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@pytest.fixture(scope="module")
def head():
    # The tiny model is a local folder: its jobs never ask the Hub.
    with ray_head(env={"HF_HUB_OFFLINE": "1"}) as h:
        yield h


def actors_on_head(client, head, sid: str) -> list[str]:
    """The classes of the actors the Ray job `sid` ran on the head's cluster: its driver joined
    the head's GCS, which gave it a Ray job id. A job that started a Ray of its own has no job
    id there, and no actor: []."""
    from ray.util.state import list_actors

    job = client.get_job_info(sid)
    if job.job_id is None:
        return []
    actors = list_actors(address=head.address, filters=[("job_id", "=", job.job_id)], limit=1000)
    return sorted(a.class_name for a in actors)


def submit_stage(head, stage: str, args: list[str], env: dict[str, str]) -> str:
    """Submit `jobs/stage_job.py <stage>` as a Ray job, wait for it; -> its log (fails the test
    if it did not succeed, or ran its work anywhere but on the head's cluster)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(head.job_server)
    sid = client.submit_job(
        entrypoint=f"{shlex.quote(sys.executable)} -m jobs.stage_job {shlex.quote(stage)}",
        runtime_env={
            "py_modules": [str(ROOT / name) for name in CODE],
            "env_vars": {**env, "WALKRANK_JOB_ARGS": json.dumps(args)},
        },
    )
    end = time.monotonic() + 900
    while (status := client.get_job_status(sid)) not in {
        JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED,
    }:  # fmt: skip
        assert time.monotonic() < end, f"{stage}: Ray job {sid} still {status}"
        time.sleep(1)
    logs = client.get_job_logs(sid)
    assert status == JobStatus.SUCCEEDED, f"{stage}: {status}\n{logs[-4000:]}"
    assert actors_on_head(client, head, sid), f"{stage}: no actor of the job on the head"
    return logs


def test_llm_stages_as_ray_jobs_equal_local_ray(head, tmp_path):
    model = build_tiny_model(tmp_path / "model")
    sets = [f"llm.model={model}", "llm.max_users=0", "llm.shard_users=4", "ray.num_cpus=2"]
    set_args = [a for s in sets for a in ("--set", s)]
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        base.pop(var, None)

    local = tmp_path / "local" / "r"
    write_llm_run(local, seed=3, n_users=10)
    for stage in STAGES:
        res = subprocess.run(
            [sys.executable, str(ROOT / "jobs" / "stage_job.py"), stage, "--run-dir",
             str(local), *set_args],
            cwd=ROOT, env=base, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert res.returncode == 0, f"local {stage}:\n{res.stderr[-4000:]}"

    cluster = tmp_path / "cluster" / "r"
    write_llm_run(cluster, seed=3, n_users=10)
    with head_auth(head):
        for stage in STAGES:
            logs = submit_stage(
                head, stage, ["--run-dir", str(cluster), *set_args], {"HF_HUB_OFFLINE": "1"}
            )
            assert f"[{stage}] done" in logs, logs[-4000:]

    for table, keys in (("user_summaries", ["user_id"]), ("llm_scores", ["user_id", "item_id"])):
        a = tableio.read_polars(cluster, table).sort(keys)
        b = tableio.read_polars(local, table).sort(keys)
        assert a.height > 0
        # The same model, users, batches and thread count (llm.torch_threads 0: one per actor
        # CPU) on the same CPU: the same floats.
        assert_frame_equal(a, b, check_exact=True)


# The DAG's RayJobOperator, run as an Airflow worker runs it (its own venv and process): argv
# dag file, stage, run dir, job args (JSON), mode, Airflow run id: "sid" prints its submission
# id; "run" runs execute() with the run's plan holding the stage and prints the result.
OPERATOR = """
import importlib.util, json, os, sys
from airflow.sdk import DAG
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # as Airflow does: walkrank_trigger.py beside it
spec = importlib.util.spec_from_file_location("walkrank_daily", sys.argv[1])
daily = importlib.util.module_from_spec(spec)
spec.loader.exec_module(daily)
stage, run_dir, args, mode = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
with DAG("ray_retry", schedule=None):
    op = daily.RayJobOperator(task_id=stage, stage=stage, run_dir=run_dir, job_args=args,
                              poll_seconds=0.5)
if mode == "sid":
    print(json.dumps({"sid": op.submission_id()}))
    sys.exit(0)
class TI:
    def xcom_pull(self, task_ids):
        return {"stages": [{"name": stage, "planned": True, "reason": ""}]}
print(json.dumps({"result": op.execute({"ti": TI(), "run_id": sys.argv[6]})}))
"""


def _job(client, sid: str):
    """The head's jobs with submission id `sid` (list_jobs: every job it ever had)."""
    return [j for j in client.list_jobs() if j.submission_id == sid]


def _wait(client, sid: str, statuses: tuple[str, ...], proc=None, timeout: float = 900):
    end = time.monotonic() + timeout
    while not (jobs := _job(client, sid)) or jobs[0].status not in statuses:
        assert proc is None or proc.poll() is None, "the operator ended before the job ran"
        assert time.monotonic() < end, f"{sid}: {jobs and jobs[0].status}, not {statuses}"
        time.sleep(0.1)
    return jobs[0]


@pytest.mark.skipif(
    not AIRFLOW_PY.exists() and not os.environ.get("CI"),
    reason="Airflow's venv is missing: run `make airflow-setup` (make test does)",
)
def test_a_killed_ray_task_retried_leaves_one_job(head, tmp_path):
    from ray.job_submission import JobSubmissionClient

    model = build_tiny_model(tmp_path / "model")
    run = tmp_path / "runs" / "2026-11-21"
    write_llm_run(run, seed=5, n_users=10)
    sets = [f"llm.model={model}", "llm.max_users=0", "llm.shard_users=4", "ray.num_cpus=2"]
    job_args = ["--run-dir", str(run), *[a for s in sets for a in ("--set", s)]]
    env = {
        **os.environ, **head.auth, "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "WALKRANK_HOME": str(ROOT), "WALKRANK_RAY_ADDRESS": head.job_server,
        "WALKRANK_RAY_PYTHON": sys.executable,
    }  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    logs = tmp_path / "logs"
    logs.mkdir()

    def operator(stage: str, mode: str, name: str, run_id="scheduled__2026-11-21"):
        dag = str(ROOT / "airflow_dags" / "walkrank_daily.py")
        args = [dag, stage, str(run), json.dumps(job_args), mode, run_id]
        with open(logs / f"{name}.out", "w") as out, open(logs / f"{name}.err", "w") as err:
            return subprocess.Popen(
                [str(AIRFLOW_PY), "-c", OPERATOR, *args], env=env, stdout=out, stderr=err
            )

    def finish(proc: subprocess.Popen, name: str) -> dict:
        assert proc.wait(timeout=900) == 0, (logs / f"{name}.err").read_text()[-4000:]
        return json.loads((logs / f"{name}.out").read_text().strip().splitlines()[-1])

    sid = finish(operator("summaries", "sid", "sid"), "sid")["sid"]
    with head_auth(head):
        client = JobSubmissionClient(head.job_server)
        # Try 1 submits the job; the worker dies (SIGKILL: on_kill never stops the job).
        try1 = operator("summaries", "run", "try1")
        job = _wait(client, sid, ("RUNNING",), try1)
        os.kill(try1.pid, signal.SIGKILL)
        try1.wait()
        assert _job(client, sid)[0].status in ("RUNNING", "SUCCEEDED")
        # Try 2 finds the job and waits for it: the same job, no second one.
        assert finish(operator("summaries", "run", "try2"), "try2") == {"result": sid}
        (done,) = _job(client, sid)
        assert done.status == "SUCCEEDED" and done.start_time == job.start_time
        assert actors_on_head(client, head, sid)  # its work ran on the head's cluster
        # (It waited, unless the job had ended by the time try 2 looked.)
        said = (logs / "try2.err").read_text() + (logs / "try2.out").read_text()
        assert "is RUNNING: waiting for it" in said or "its result is taken" in said, said[-3000:]
        # Try 3, after the job succeeded, takes its result.
        assert finish(operator("summaries", "run", "try3"), "try3") == {"result": sid}
        assert [(j.status, j.start_time) for j in _job(client, sid)] == [
            ("SUCCEEDED", job.start_time)
        ]
        # Another Airflow run of the same run dir runs its stage anew (the job finds its
        # outputs committed), under the same id: still one job.
        rerun = operator("summaries", "run", "rerun", run_id="manual__rerun")
        assert finish(rerun, "rerun") == {"result": sid}
        (again,) = _job(client, sid)
        assert again.status == "SUCCEEDED" and again.start_time > job.start_time

        # A job that failed under the stage's id is deleted and submitted again.
        sid2 = finish(operator("llm_scores", "sid", "sid2"), "sid2")["sid"]
        client.submit_job(entrypoint=f"{shlex.quote(sys.executable)} -c 'raise SystemExit(3)'",
                          submission_id=sid2)  # fmt: skip
        failed = _wait(client, sid2, TERMINAL)
        assert failed.status == "FAILED"
        assert finish(operator("llm_scores", "run", "try4"), "try4") == {"result": sid2}
        (again,) = _job(client, sid2)
        assert again.status == "SUCCEEDED" and "jobs.stage_job llm_scores" in again.entrypoint
        assert actors_on_head(client, head, sid2)
        assert again.start_time > failed.start_time
    for table in ("user_summaries", "llm_scores"):
        assert tableio.read_polars(run, table).height > 0, table
