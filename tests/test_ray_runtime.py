"""The local Ray of a run is its own, even on a machine where `ray start` runs a cluster.

`ray start` records its address in Ray's default temp dir (`$RAY_TMPDIR/ray`, `/tmp/ray`
without it) as `ray_current_cluster`, and a bare `ray.init()` joins that cluster: a local
`walkrank run` would then send its LLM work to someone else's cluster, or fail outright with
`ray.num_cpus` set (Ray refuses num_cpus when it connects). Here a real head
(tests/ray_head.py) is recorded there, as `ray start` without `--temp-dir` records itself,
under a RAY_TMPDIR of the test's own (the machine's `/tmp/ray` is left alone), and a run's
Ray starts in a fresh process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray_head import ray_head

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]

LOCAL_RAY = textwrap.dedent(
    """
    import json
    from pipelines.config import RayConfig
    from pipelines.ray_runtime import init_ray

    ray = init_ray(RayConfig(num_cpus=3))
    ctx = ray.get_runtime_context()
    print(json.dumps({"gcs": ctx.gcs_address, "cpus": ray.cluster_resources().get("CPU")}))
    ray.shutdown()
    """
)
BARE_RAY = textwrap.dedent(
    """
    import json
    import ray

    ray.init()
    ctx = ray.get_runtime_context()
    print(json.dumps({"gcs": ctx.gcs_address, "cpus": ray.cluster_resources().get("CPU")}))
    ray.shutdown()
    """
)


@contextlib.contextmanager
def private_ray_tmpdir() -> Iterator[Path]:
    """A RAY_TMPDIR for the subprocesses: their default Ray temp dir (the latest-cluster
    record, local sessions) is `<it>/ray`. A short path under /tmp rather than tmp_path:
    Ray puts unix sockets under it (108-byte limit). Removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="wr-rt-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _file_state(path: Path) -> tuple[bytes, int] | None:
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


def _port(address: str) -> str:
    """The GCS port: a client reports the head's address with the node's IP, which need not
    be the 127.0.0.1 the head was started on."""
    return address.rpartition(":")[2]


def _python(script: str, env: dict[str, str]) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_local_run_starts_its_own_ray_beside_a_ray_start_cluster():
    from ray._common.utils import get_ray_address_file

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    machine_record = Path(get_ray_address_file(None))  # this process's: the machine's own
    before = _file_state(machine_record)
    with ray_head(num_cpus=1) as head, private_ray_tmpdir() as tmpdir:
        env["RAY_TMPDIR"] = str(tmpdir)
        record = tmpdir / "ray" / "ray_current_cluster"
        record.parent.mkdir()
        record.write_text(head.address)
        # Control: a bare ray.init() here does join the recorded head, so the record is
        # where Ray looks and the run below had a cluster to (wrongly) join.
        joined = _python(BARE_RAY, {**env, **head.auth})
        assert (_port(joined["gcs"]), joined["cpus"]) == (_port(head.address), 1)
        got = _python(LOCAL_RAY, env)
    assert _port(got["gcs"]) != _port(head.address)
    assert got["cpus"] == 3  # ray.num_cpus of its own cluster, not the head's 1
    assert _file_state(machine_record) == before
