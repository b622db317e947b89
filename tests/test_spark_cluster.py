"""The Spark jobs on a real standalone cluster (master + worker on 127.0.0.1, started from
pyspark's own launcher) whose worker has a bare Python: `pip list` of it holds no WalkRank, no
numpy, no faiss (the test checks). Each stage is submitted as the README says, with the
executor environment `make dist` builds:

    spark-submit --archives dist/walkrank-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python \
        jobs/<stage>.py --run-dir ...

and its tables equal those of a local-mode run of the same config; nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.stages import DEFAULT_STAGES, STAGES
from pipelines.synthetic_logs import LogModel, generate_logs

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ["--set", "ppr.walks_per_node=300"]
SPARK_STAGES = [s for s in DEFAULT_STAGES if STAGES[s].engine == "spark"]
ARCHIVE = ROOT / "dist" / "walkrank-env.tar.gz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _bare_python(tmp: Path) -> Path:
    """A Python with nothing installed but pip (no system site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(tmp / "bare")], check=True)
    return tmp / "bare" / "bin" / "python"


def _env(tmp: Path, worker_python: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(_spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # The worker's executors default to the bare Python; the driver is ours.
        "PYSPARK_PYTHON": str(worker_python),
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_WORKER_DIR": str(tmp / "work"),
        "SPARK_LOG_DIR": str(tmp / "logs"),
    }


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"{text!r} not in {path}:\n{path.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("standalone")
    bare = _bare_python(tmp)
    env = _env(tmp, bare)
    spark_class = str(_spark_home() / "bin" / "spark-class")
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        master_log = tmp / "master.log"
        procs.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(port), "--webui-port", str(_free_port())],
                env=env, stdout=master_log.open("w"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )  # fmt: skip
        _wait_for(master_log, "I have been elected leader", procs[0])
        worker_log = tmp / "worker.log"
        procs.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--cores", "2", "--memory", "3g", "--webui-port", str(_free_port()),
                 "--work-dir", str(tmp / "work"), url],
                env=env, stdout=worker_log.open("w"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )  # fmt: skip
        _wait_for(worker_log, "Successfully registered with master", procs[1])
        yield url, env, tmp, bare
    finally:
        for p in reversed(procs):
            _stop(p)
    for p in procs:
        assert p.poll() is not None, "a cluster process outlived the test"


def test_jobs_on_a_standalone_cluster_equal_local_mode(standalone, tmp_path):
    url, env, tmp, bare = standalone
    if not ARCHIVE.exists():
        pytest.fail(f"{ARCHIVE} is missing: run `make dist` (make test-slow does)")
    # What the worker's Python has: pip and nothing of ours.
    listed = subprocess.run(
        [str(bare), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"walkrank", "numpy", "faiss-cpu", "pyarrow", "numba", "pandas"}, names
    log = tmp_path / "log"
    generate_logs(20_000, 5, log, LogModel(n_items=400), progress=False)

    local = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(log), "--out",
         str(tmp_path / "local"), "--run-id", "r", "--stages", ",".join(SPARK_STAGES),
         "--set", "spark.master=local[2]", *SETTINGS],
        cwd=ROOT, env={**env, "PYSPARK_PYTHON": sys.executable}, capture_output=True, text=True,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]

    run_dir = tmp_path / "cluster" / "r"
    submit = str(_spark_home() / "bin" / "spark-submit")
    for stage in SPARK_STAGES:
        extra = ["--input", str(log)] if stage == "ingest" else []
        res = subprocess.run(
            [submit, "--master", url, "--archives", f"{ARCHIVE}#env",
             "--conf", "spark.pyspark.python=./env/bin/python",
             "--conf", f"spark.pyspark.driver.python={sys.executable}",
             "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false",
             str(ROOT / "jobs" / f"{stage}.py"), "--run-dir", str(run_dir), *extra, *SETTINGS],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        # spark-submit's Python runner sends the job's stderr to its stdout.
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"{stage}:\n{out[-4000:]}"
        assert f"[{stage}] done" in out, out[-4000:]
    # The executors ran on the cluster's worker, from the shipped environment it unpacked.
    assert any((tmp / "work").glob("app-*/*/stderr"))
    assert any((tmp / "work").glob("app-*/*/env/bin/python"))

    for stage in SPARK_STAGES:
        for table in STAGES[stage].outputs:
            a = tableio.read_polars(run_dir, table)
            b = tableio.read_polars(tmp_path / "local" / "r", table)
            keys = [c for c, t in a.schema.items() if t.base_type().__name__ != "List"]
            assert_frame_equal(a.sort(keys), b.sort(keys), check_exact=False, rel_tol=1e-9)
            assert (
                tableio.read_manifest(run_dir, table)["rows"]
                == tableio.read_manifest(tmp_path / "local" / "r", table)["rows"]
            )
