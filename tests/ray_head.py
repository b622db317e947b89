"""A real Ray head on 127.0.0.1 for the cluster tests: `ray start --head` with its job server
(the dashboard) on a free port, token auth, and a private temp dir; stopped afterwards by
the pids of this head's processes only (found by that temp dir), never by `ray stop`, which
stops every Ray on the machine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


@dataclass(frozen=True)
class RayHead:
    address: str  # GCS address, for ray.init / RAY_ADDRESS
    job_server: str  # http://127.0.0.1:<port>, for the Ray Jobs API
    temp_dir: Path
    auth: dict[str, str]  # RAY_AUTH_MODE / RAY_AUTH_TOKEN that clients need


@contextmanager
def head_auth(head: RayHead) -> Iterator[None]:
    """This process's Ray clients authenticate with the head's token inside the block.

    Ray caches the auth mode and token per process at first use (an earlier local `ray.init`
    in the same pytest process fills it), so the cache is reset on the way in and out."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    saved = {var: os.environ.get(var) for var in head.auth}
    os.environ.update(head.auth)
    reset_auth_token_state()
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        reset_auth_token_state()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(temp_dir: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", temp_dir], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


@contextmanager
def ray_head(num_cpus: int = 2, env: dict[str, str] | None = None) -> Iterator[RayHead]:
    """A head whose processes (and the job drivers they start) see `env` besides ours."""
    # Short path: Ray puts unix sockets under it (108-byte limit).
    temp_dir = f"/tmp/wr-ray-{uuid.uuid4().hex[:8]}"
    port, dash = free_port(), free_port()
    # Ray >= 2.59 authenticates clients with a token; a cluster shares one explicitly.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0", **auth}
    env.pop("RAY_ADDRESS", None)
    start = subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         f"--num-cpus={num_cpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={free_port()}",
         f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        yield RayHead(f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}", Path(temp_dir), auth)
    finally:
        for sig in ("TERM", "KILL"):
            for pid in _ours(temp_dir):
                subprocess.run(["kill", f"-{sig}", str(pid)], capture_output=True)
            time.sleep(2)
        left = _ours(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"
