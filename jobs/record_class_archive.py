"""Records the class-data-sharing archive of the classes a WalkRank driver loads (AppCDS):
`python -m jobs.record_class_archive [OUT]`, which `make setup` runs.

A local run's JVM spends its first seconds loading, parsing and verifying the Spark, Scala and
Hadoop classes it needs, and every `walkrank run` process (a retry, a resumed run, a test's run)
pays that again. This records the classes a small run loads into a dynamic archive
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
import random
import sys
import tempfile
from pathlib import Path

from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.spark_session import CLASS_ARCHIVE_QUIET, class_archive
from pipelines.stage_registry import STAGES

# What the archive is recorded from: the Spark stages up to candidates (the fit pass repeats
# them; rank and evaluate use the same operators) on a log of a few hundred events.
WORKLOAD_STAGES = ("ingest", "split", "graph", "ppr", "neighbors", "candidates")


def workload_log(path: Path) -> None:
    """The recording run's input: 60 users' item sequences (`--format sequences`)."""
    rng = random.Random(0)
    lines = (
        " ".join([f"u{u}", *(str(rng.randrange(50)) for _ in range(rng.randint(2, 12)))])
        for u in range(60)
    )
    path.write_text("\n".join(lines) + "\n")


def record(out: Path) -> Path:
    """Run the workload in a session whose JVM writes the archive at exit, wait for that exit,
    then move the archive to `out` (a reader never maps a half-written file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "seq.txt"
        workload_log(log)
        # Recorded from a cold start, not from an archive this replaces (this process only:
        # `jobs/record_class_archive.py` ends with the recording).
        os.environ["WALKRANK_CLASS_ARCHIVE"] = "none"
        dump = f"-XX:ArchiveClassesAtExit={part} {CLASS_ARCHIVE_QUIET}"
        cfg = load_config(
            None,
            [
                f'ingest.input="{log}"',
                "spark.master='local[2]'",
                "ppr.walks_per_node=100",
                "llm.enabled=false",
                "run.progress_seconds=0",
                f'spark.conf={{"spark.driver.extraJavaOptions"="{dump}"}}',
            ],
        )
        run_stages(Path(tmp) / "run", cfg, [STAGES[name] for name in WORKLOAD_STAGES])
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        SparkSession.getActiveSession().stop()
        # The gateway JVM exits when its stdin closes; the archive is written on that exit.
        proc = SparkContext._gateway.proc
        proc.stdin.close()
        if proc.wait(timeout=600) != 0 or not part.is_file():
            raise RuntimeError(f"the JVM wrote no class archive (exit {proc.returncode})")
        os.replace(part, out)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else class_archive()
    if target is None:
        raise SystemExit("WALKRANK_CLASS_ARCHIVE=none: no archive to record")
    print(f"class archive: {record(target)} ({target.stat().st_size / 2**20:.0f} MiB)")
