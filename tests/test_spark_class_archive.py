"""The class-data-sharing archive `make setup` records (pipelines/class_archive_recording.py): a
local session's JVM maps it, and loads its Spark classes from it instead of from the jars."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.spark_session import class_archive, class_archive_options

ROOT = Path(__file__).resolve().parents[1]


def test_no_archive_no_options(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKRANK_CLASS_ARCHIVE", "none")
    assert class_archive() is None and class_archive_options() == ""
    archive = tmp_path / "other.jsa"
    monkeypatch.setenv("WALKRANK_CLASS_ARCHIVE", str(archive))
    assert class_archive_options() == ""  # not there
    archive.write_bytes(b"x")
    opts = class_archive_options()
    assert opts.startswith(f"-XX:SharedArchiveFile={archive} ")
    assert "-Xshare:auto" in opts  # a file that does not match: no archive, no error


# A child process: the session of this test process is already up.
_CHILD = """
import sys
from pipelines.config import load_config
from pipelines.spark_session import get_spark
log = sys.argv[1]
opts = '{"spark.driver.extraJavaOptions"="-Xlog:class+load=info:file=%s"}' % log
spark = get_spark(load_config(None, ["spark.master='local[1]'", "spark.conf=" + opts]).spark)
assert spark.range(100).selectExpr("id % 3 as k").groupBy("k").count().count() == 3
spark.stop()
"""


def _sources(log: Path) -> dict[str, str]:
    """class name -> where the JVM loaded it from (-Xlog:class+load)."""
    out = {}
    for line in log.read_text().splitlines():
        head, _, source = line.partition(" source: ")
        if source:
            out[head.rsplit(" ", 1)[-1]] = source
    return out


@pytest.mark.spark
@pytest.mark.parametrize("archive", ["made by make setup", "none"])
def test_a_local_session_loads_spark_from_the_archive(tmp_path, archive):
    path = class_archive()
    if archive != "none" and (path is None or not path.is_file()):
        if os.environ.get("CI"):
            pytest.fail(f"no class archive at {path}: `make setup` records it")
        pytest.skip(f"no class archive at {path} (make setup records it)")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    if archive == "none":
        env["WALKRANK_CLASS_ARCHIVE"] = "none"
    log = tmp_path / "classes.log"
    subprocess.run([sys.executable, "-c", _CHILD, str(log)], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    where = _sources(log)
    # Spark's classes as read from a class file, from pyspark's jars or from the archive (the
    # others are the JVM's lambda classes, which a dynamic archive does not keep).
    spark = {c: s for c, s in where.items() if c.startswith("org.apache.spark.")}
    from_jars = [c for c, s in spark.items() if ".jar" in s]
    shared = [c for c, s in spark.items() if s == "shared objects file (top)"]
    if archive == "none":
        assert shared == [] and len(from_jars) > 1000
    else:  # nearly every class the session needs was recorded by make setup's run
        assert spark["org.apache.spark.SparkContext"] == "shared objects file (top)"
        assert len(shared) > 1000 and len(from_jars) < 0.05 * len(shared), (
            len(from_jars),
            len(shared),
        )
