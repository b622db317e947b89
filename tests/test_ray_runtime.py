"""The local Ray of a run is its own, even on a machine where `ray start` runs a cluster.

`ray start` records its address in Ray's default temp dir (`/tmp/ray/ray_current_cluster`),
and a bare `ray.init()` joins that cluster: a local `walkrank run` would then send its LLM
work to someone else's cluster, or fail outright with `ray.num_cpus` set (Ray refuses
num_cpus when it connects). Here a real head (tests/ray_head.py) is recorded there, as
`ray start` without `--temp-dir` records itself, and a run's Ray starts in a fresh process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
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


@contextlib.contextmanager
def recorded_as_latest_cluster(address: str) -> Iterator[Path]:
    """Ray's "latest cluster started with `ray start`" file holds `address` inside the block;
    what it held before (if anything) is put back."""
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    before = path.read_text() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(address)
    try:
        yield path
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before)


def test_a_local_run_starts_its_own_ray_beside_a_ray_start_cluster():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with ray_head(num_cpus=1) as head, recorded_as_latest_cluster(head.address):
        res = subprocess.run(
            [sys.executable, "-c", LOCAL_RAY],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["gcs"] != head.address
    assert got["cpus"] == 3  # ray.num_cpus of its own cluster, not the head's 1
