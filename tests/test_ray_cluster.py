"""The LLM stages on a real Ray cluster: `ray start --head` on 127.0.0.1, the stages' job
scripts run as drivers with RAY_ADDRESS, their tables equal a local-Ray run's; the cluster's
processes are stopped afterwards (only this test's, found by its own temp dir)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from tests.llm_fixtures import build_tiny_model, write_llm_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")
STAGES = ("summaries", "llm_scores")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(temp_dir: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", temp_dir], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


@pytest.fixture(scope="module")
def ray_head():
    # Short path: Ray puts unix sockets under it (108-byte limit).
    temp_dir = f"/tmp/wr-ray-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    # Ray >= 2.59 authenticates clients with a token; a cluster shares one explicitly.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    start = subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        yield f"127.0.0.1:{port}", Path(temp_dir), auth
    finally:
        for sig in ("TERM", "KILL"):
            for pid in _ours(temp_dir):
                subprocess.run(["kill", f"-{sig}", str(pid)], capture_output=True)
            time.sleep(2)
        left = _ours(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


def test_llm_stages_on_a_ray_cluster_equal_local_ray(ray_head, tmp_path):
    address, temp_dir, auth = ray_head
    model = build_tiny_model(tmp_path / "model")
    sets = [f"llm.model={model}", "llm.max_users=0", "llm.shard_users=4"]
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        base.pop(var, None)
    runs = {}
    for name, env in (("local", base), ("cluster", {**base, **auth, "RAY_ADDRESS": address})):
        run_dir = tmp_path / name / "r"
        write_llm_run(run_dir, seed=3, n_users=10)
        for stage in STAGES:
            res = subprocess.run(
                [sys.executable, str(ROOT / "jobs" / f"{stage}.py"), "--run-dir", str(run_dir),
                 *[a for s in [*sets, "ray.num_cpus=2"] for a in ("--set", s)]],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            assert res.returncode == 0, f"{name} {stage}:\n{res.stderr[-4000:]}"
        runs[name] = run_dir
    # The cluster run's two drivers connected to the head: its session logs hold them.
    drivers = list(temp_dir.glob("session_latest/logs/python-core-driver-*.log"))
    assert len(drivers) >= len(STAGES), drivers
    for table, keys in (("user_summaries", ["user_id"]), ("llm_scores", ["user_id", "item_id"])):
        a = tableio.read_polars(runs["cluster"], table).sort(keys)
        b = tableio.read_polars(runs["local"], table).sort(keys)
        assert a.height > 0
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-5, abs_tol=1e-6)
