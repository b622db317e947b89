"""What the class-data-sharing archive (`make setup`, pipelines/class_archive_recording.py) saves a
process that starts a local Spark session: without it (WALKRANK_CLASS_ARCHIVE=none) and with
it, alternating, each in a new Python process, as `walkrank run`, a retry or an Airflow task is.

* start: `get_spark` (JVM launch and SparkContext) and a first small aggregation;
* short run: `walkrank run` on a 60-user log (425 events) stopped by an injected fault at
  ingest's last write, which is the part of a run a resumed or retried process always pays.

    .venv/bin/python benchmarks/class_archive_bench.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = """
import time
t0 = time.perf_counter()
from pipelines.config import load_config
from pipelines.spark_session import get_spark
spark = get_spark(load_config(None, ["spark.master='local[2]'"]).spark)
t1 = time.perf_counter()
spark.range(1000).selectExpr("id % 7 as k").groupBy("k").count().collect()
print(t1 - t0, time.perf_counter() - t1)
"""


def workload_log(path: Path) -> None:
    """The short run's input: 60 users' item sequences (`--format sequences`)."""
    rng = random.Random(0)
    lines = (
        " ".join([f"u{u}", *(str(rng.randrange(50)) for _ in range(rng.randint(2, 12)))])
        for u in range(60)
    )
    path.write_text("\n".join(lines) + "\n")


def _env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WALKRANK_CLASS_ARCHIVE"}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    if mode == "without":
        env["WALKRANK_CLASS_ARCHIVE"] = "none"
    return env


def _wait_for_jvms() -> None:
    """The previous process's JVM ends after its Python: do not time the next one beside it."""
    while subprocess.run(["pgrep", "-f", "org.apache.spark"], capture_output=True).stdout:
        time.sleep(0.2)


def start(mode: str) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", START], cwd=ROOT, env=_env(mode),
                         capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    session, job = map(float, out.stdout.split())
    _wait_for_jvms()
    return {"process_s": wall, "session_s": session, "first_job_s": job}


def short_run(mode: str, log: Path, work: Path) -> dict:
    env = {**_env(mode), "WALKRANK_FAULT": "ingest/events:raise"}
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(log), "--out", str(work),
         "--run-id", f"{mode}{time.monotonic_ns()}", "--set", "spark.master='local[2]'",
         "--set", "llm.enabled=false"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    assert "injected fault at ingest/events" in res.stderr, res.stderr[-2000:]
    _wait_for_jvms()
    return {"process_s": wall}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/class_archive.json")
    a = p.parse_args(argv)
    from pipelines.spark_session import class_archive

    path = class_archive()
    if path is None or not path.is_file():
        raise SystemExit(f"no class archive at {path}: run `make setup` first")
    results: dict = {"archive": str(path), "archive_mib": round(path.stat().st_size / 2**20),
                     "load_average_start": os.getloadavg(), "start": {}, "short_run": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "seq.txt"
        workload_log(log)
        for _ in range(a.repeats):
            for mode in ("without", "with"):
                results["start"].setdefault(mode, []).append(start(mode))
                results["short_run"].setdefault(mode, []).append(short_run(mode, log, Path(tmp)))
                print(mode, results["start"][mode][-1], results["short_run"][mode][-1], flush=True)
    results["load_average_end"] = os.getloadavg()
    lines = [
        "| measure | without (median s) | with (median s) | with / without |",
        "|---|---:|---:|---:|",
    ]
    for what, key in (("start", "session_s"), ("start", "first_job_s"), ("start", "process_s"),
                      ("short_run", "process_s")):  # fmt: skip
        med = {m: statistics.median(r[key] for r in results[what][m]) for m in ("without", "with")}
        results.setdefault("medians", {})[f"{what}.{key}"] = med
        lines.append(f"| {what} {key} | {med['without']:.2f} | {med['with']:.2f} "
                     f"| {med['with'] / med['without']:.2f} |")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
