"""The Spark jobs on a real standalone cluster (master + worker on 127.0.0.1, started from
pyspark's own launcher) whose worker has a bare Python: `pip list` of it holds no WalkRank, no
numpy, no faiss (the test checks). The input and the run live on an S3 server (SeaweedFS):
the worker and the driver run in working directories of their own and share nothing but the
server. The stages are submitted as the README says (ingest alone, then the others joined by
commas in one application), with the executor environment `make dist` builds and the S3A jars
`make jars` installs:

    spark-submit --archives dist/walkrank-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python \
        --jars <.venv/share/walkrank/jars/*.jar> jobs/stage_job.py <stage> --run-dir s3://bucket/runs/r ...

and its tables equal those of a local-mode run of the same config on local files; nothing is
left running."""

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
from pipelines.spark_session import project_jars
from pipelines.stage_registry import DEFAULT_STAGES, STAGES
from pipelines.storage import Location
from pipelines.synthetic_logs import LogModel, generate_logs
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server

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
def standalone(tmp_path_factory, s3):  # noqa: F811
    tmp = tmp_path_factory.mktemp("standalone")
    bare = _bare_python(tmp)
    # The AWS environment reaches the executors through the worker's (S3A's and pyarrow's
    # default credential chains read it), never through a Spark setting.
    env = {**_env(tmp, bare), **s3.env}
    home = tmp / "worker-home"  # the worker's working directory: not the driver's
    home.mkdir()
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
                start_new_session=True, cwd=home,
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
    remote_log = Location("s3://walkrank/cluster/log")
    for f in sorted(p for p in log.rglob("*") if p.is_file()):
        (remote_log / str(f.relative_to(log))).write_bytes(f.read_bytes())
    jars = project_jars()
    assert any("hadoop-aws" in j for j in jars), f"no S3A jars in {jars}: run `make jars`"

    local = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(log), "--out",
         str(tmp_path / "local"), "--run-id", "r", "--stages", ",".join(SPARK_STAGES),
         "--set", "spark.master=local[2]", *SETTINGS],
        cwd=ROOT, env={**env, "PYSPARK_PYTHON": sys.executable}, capture_output=True, text=True,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]

    run_dir = Location("s3://walkrank/cluster/r")
    driver_home = tmp_path / "driver-home"
    driver_home.mkdir()
    submit = str(_spark_home() / "bin" / "spark-submit")
    # ingest as its own application, the other stages in one: the two forms of the job's
    # first argument, and one executor start (about 34 s here) for the other seven stages.
    first, rest = SPARK_STAGES[0], ",".join(SPARK_STAGES[1:])
    for stage in (first, rest):
        extra = ["--input", str(remote_log)] if stage == "ingest" else []
        res = subprocess.run(
            [submit, "--master", url, "--archives", f"{ARCHIVE}#env", "--jars", ",".join(jars),
             "--conf", "spark.pyspark.python=./env/bin/python",
             "--conf", f"spark.pyspark.driver.python={sys.executable}",
             "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false",
             str(ROOT / "jobs" / "stage_job.py"), stage, "--run-dir", str(run_dir), *extra,
             *SETTINGS],
            cwd=driver_home, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        # spark-submit's Python runner sends the job's stderr to its stdout.
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"{stage}:\n{out[-4000:]}"
        for name in stage.split(","):
            assert f"[{name}] done" in out, out[-4000:]
    assert len(list((tmp / "work").glob("app-*"))) == 2  # two applications, not one per stage
    # The executors ran on the cluster's worker, from the shipped environment it unpacked,
    # with the shipped jars; the tables are on S3 only, not in either working directory.
    assert any((tmp / "work").glob("app-*/*/stderr"))
    assert any((tmp / "work").glob("app-*/*/env/bin/python"))
    assert any((tmp / "work").glob("app-*/*/hadoop-aws-*.jar"))
    assert list(driver_home.iterdir()) == [] and list((tmp / "worker-home").iterdir()) == []
    assert not list((tmp / "work").glob("app-*/*/*_manifest.json"))

    for stage in SPARK_STAGES:
        for table in STAGES[stage].outputs:
            a = tableio.read_polars(run_dir, table)
            b = tableio.read_polars(tmp_path / "local" / "r", table)
            if table == "quarantine":  # `source`: the input's path, here an s3a:// URI
                a, b = a.drop("source"), b.drop("source")
            keys = [c for c, t in a.schema.items() if t.base_type().__name__ != "List"]
            # Exact, floats included: every double is a function of its inputs alone (sums of
            # shuffled rows are exact_sum, window sums run in a total order, ALS has fixed
            # blocks, each walk's stream is seeded by its source and number), not of the
            # partitioning or of where the tasks ran.
            assert_frame_equal(a.sort(keys), b.sort(keys), check_exact=True)
            assert (
                tableio.read_manifest(run_dir, table)["rows"]
                == tableio.read_manifest(tmp_path / "local" / "r", table)["rows"]
            )
