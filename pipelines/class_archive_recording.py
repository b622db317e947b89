"""Records the class-data-sharing archive (AppCDS) of the classes a WalkRank driver loads:
`python -m pipelines.class_archive_recording [OUT]`, which `make setup` runs (OUT: where
local sessions look for it, `spark_session.class_archive()`, unless given).

A local run's JVM spends its first seconds loading, parsing and verifying the Spark, Scala and
Hadoop classes it needs, and every `walkrank run` process (a retry, a resumed run, a test's
run) pays that again. A small run here records those classes into a dynamic archive
(`-XX:ArchiveClassesAtExit`); a local session then maps it (`-XX:SharedArchiveFile`,
`pipelines.spark_session.class_archive_options`), and so does a DAG task's driver that
spark-submit starts on the Airflow worker. The archive holds class metadata only: what a run
computes is the same with it or without it.

The JVM uses the archive only where it matches: the same JDK build and the same class path
(pyspark's jars, at the same place). Otherwise it starts without it, as before, silently.
WALKRANK_CLASS_ARCHIVE names another file, or `none` to start without one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pipelines.spark_session import CLASS_ARCHIVE_QUIET


def run_workload(java_options: str, work: Path) -> None:
    """The recorded run: the default plan with the fusion order and no LLM on a 500-event
    generated log, in a local session whose driver JVM takes `java_options`. The fit pass,
    rank and the LLM stages use the same Spark operators and would only make it longer."""
    from pipelines import api
    from pipelines.config import load_config
    from pipelines.synthetic_logs import generate_logs

    log = work / "log"
    generate_logs(500, 0, log, progress=False)
    sets = [*api.input_sets(str(log)), "spark.master='local[2]'", "ppr.walks_per_node=100",
            "llm.enabled=false", "rank.method='fusion'", "run.progress_seconds=0",
            f'spark.conf={{"spark.driver.extraJavaOptions"="{java_options}"}}']  # fmt: skip
    api.run(load_config(None, sets), work / "run")


def record_class_archive(out: Path) -> Path:
    """Run the workload in a session whose JVM writes the archive when it exits, wait for that
    exit, then move the archive to `out` (a reader never maps a half-written file). Call it in
    a process of its own: the session and its JVM end with it."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    # Recorded from a cold start, not from the archive this replaces.
    os.environ["WALKRANK_CLASS_ARCHIVE"] = "none"
    with tempfile.TemporaryDirectory() as tmp:
        run_workload(f"-XX:ArchiveClassesAtExit={part} {CLASS_ARCHIVE_QUIET}", Path(tmp))
    session = SparkSession.getActiveSession()
    if session is None or SparkContext._gateway is None:
        raise RuntimeError("the class-archive workload started no local Spark session")
    session.stop()
    # The gateway JVM exits when its stdin closes; the archive is written on that exit.
    proc = SparkContext._gateway.proc
    proc.stdin.close()
    if proc.wait(timeout=600) != 0 or not part.is_file():
        raise RuntimeError(f"the JVM wrote no class archive (exit {proc.returncode})")
    os.replace(part, out)
    return out


if __name__ == "__main__":
    from pipelines.spark_session import class_archive

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else class_archive()
    if target is None:
        raise SystemExit("WALKRANK_CLASS_ARCHIVE=none: no archive path to record to")
    print(
        f"class archive: {record_class_archive(target)} ({target.stat().st_size / 2**20:.0f} MiB)"
    )
