"""The LLM stages as Ray jobs: a `ray start --head` on 127.0.0.1 runs `jobs/stage_job.py
<stage>` submitted with the Ray Jobs API, the way the DAG submits it (a fixed entrypoint, the code as
`py_modules` and the arguments as a JSON list in the runtime env); the tables equal a
local-Ray run's; the head's processes are stopped afterwards (only this test's)."""

from __future__ import annotations

import json
import os
import shlex
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


@pytest.fixture(scope="module")
def head():
    with ray_head() as h:
        yield h


def submit_stage(job_server: str, stage: str, args: list[str], env: dict[str, str]) -> str:
    """Submit `jobs/stage_job.py <stage>` as a Ray job, wait for it; -> its log (fails the test if it
    did not succeed)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(job_server)
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
                head.job_server, stage, ["--run-dir", str(cluster), *set_args],
                {"HF_HUB_OFFLINE": "1"},
            )  # fmt: skip
            assert f"[{stage}] done" in logs, logs[-4000:]
    # The jobs' drivers ran on the head (its session logs hold them).
    assert len(list(head.temp_dir.glob("session_latest/logs/job-driver-*.log"))) >= len(STAGES)

    for table, keys in (("user_summaries", ["user_id"]), ("llm_scores", ["user_id", "item_id"])):
        a = tableio.read_polars(cluster, table).sort(keys)
        b = tableio.read_polars(local, table).sort(keys)
        assert a.height > 0
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-5, abs_tol=1e-6)
