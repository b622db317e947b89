"""How WalkRank's cost grows with the number of events, stage by stage.

For each size N (events) it generates a synthetic log (`walkrank generate`, seed fixed), then
runs each Spark stage in its own `walkrank run --stages <stage>` process, recording:
- wall time of the stage (the runner's "[stage] done in Xs" line; JVM start-up excluded);
- shuffle bytes written (summed over the tasks of the stage's Spark event log);
- peak memory of the driver JVM and of the Python processes (driver and executor workers),
  sampled every 0.2 s with psutil over the process tree, as PSS: Spark's Python workers are
  forked from one daemon and share most pages, so summed RSS would count them many times.
Then it fits time ∝ N^b per stage (least squares on log-log) and prints a markdown table.

    python benchmarks/scale_bench.py --events 1000000,5000000,20000000 --out /tmp/scale
    python benchmarks/scale_bench.py --events 100000,300000 --out /tmp/scale-small  # quick

Results also go to <out>/scale.json. Runs on whatever machine it is started on; record its
cores and memory beside the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "split", "graph", "ppr", "neighbors", "candidates"]


def _sample_tree(pid: int, peaks: dict[str, int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        jvm = py = 0
        for p in procs:
            try:
                try:
                    rss = p.memory_full_info().pss
                except (psutil.AccessDenied, AttributeError):
                    rss = p.memory_info().rss
                if "java" in p.name():
                    jvm += rss
                else:
                    py += rss
            except psutil.NoSuchProcess:
                continue
        peaks["jvm"] = max(peaks["jvm"], jvm)
        peaks["python"] = max(peaks["python"], py)
        stop.wait(0.2)


def shuffle_bytes(event_dir: Path) -> int:
    """Sum of 'Shuffle Bytes Written' over every task of the event logs in event_dir."""
    total = 0
    logs = [p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "app"))]
    for log in logs:
        with log.open() as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                metrics = json.loads(line).get("Task Metrics") or {}
                total += (metrics.get("Shuffle Write Metrics") or {}).get(
                    "Shuffle Bytes Written", 0
                )
    return total


def run_stage(
    stage: str, data: Path, out: Path, events_dir: Path, sets: list[str], config: str = ""
) -> dict:
    events_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--input", str(data), "--out", str(out),
           "--run-id", "r", "--stages", stage,
           "--set", "spark.conf={'spark.eventLog.enabled' = 'true', "
                    f"'spark.eventLog.dir' = '{events_dir}', 'spark.eventLog.compress' = 'false', "
                    "'spark.eventLog.rolling.enabled' = 'false'}"]  # fmt: skip
    if config:
        cmd += ["--config", config]
    for s in sets:
        cmd += ["--set", s]
    peaks = {"jvm": 0, "python": 0}
    stop = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peaks, stop), daemon=True)
    sampler.start()
    err = proc.stderr.read()
    proc.wait()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{err[-3000:]}")
    done = re.search(rf"\[{stage}\] done in ([0-9.]+)s", err)
    return {
        "stage": stage,
        "seconds": float(done.group(1)) if done else math.nan,
        "process_seconds": round(time.perf_counter() - t0, 2),
        "shuffle_bytes": shuffle_bytes(events_dir),
        "peak_jvm_rss": peaks["jvm"],
        "peak_python_rss": peaks["python"],
    }


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    xs = [math.log(n) for n in sizes]
    ys = [math.log(max(s, 1e-3)) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", default="1000000,5000000,20000000")
    ap.add_argument("--out", default="/tmp/walkrank-scale")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--config", default="", help="a TOML profile (default: the built-in defaults)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    sizes = [int(x) for x in args.events.split(",")]
    stages = args.stages.split(",")
    out = Path(args.out)
    rows = []
    for n in sizes:
        data = out / f"data-{n}"
        if not (data / "_generator.json").exists():
            subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "generate", "--events", str(n),
                 "--seed", str(args.seed), "--out", str(data)],
                cwd=ROOT, check=True,
            )  # fmt: skip
        for stage in stages:
            row = {
                "events": n,
                **run_stage(
                    stage, data, out / f"run-{n}", out / f"ev-{n}-{stage}", args.sets, args.config
                ),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    fits = {
        s: growth_exponent(sizes, [r["seconds"] for r in rows if r["stage"] == s]) for s in stages
    } if len(sizes) > 1 else {}  # fmt: skip
    machine = {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
               "python": platform.python_version()}  # fmt: skip
    (out / "scale.json").write_text(
        json.dumps({"machine": machine, "rows": rows, "exponents": fits}, indent=2)
    )
    print(f"\nmachine: {machine}\n")
    print(
        "| stage | "
        + " | ".join(f"{n:,} events: s / shuffle MiB / JVM GiB / Py GiB" for n in sizes)
        + " | b |"
    )
    print("|---|" + "---|" * (len(sizes) + 1))
    for s in stages:
        cells = []
        for n in sizes:
            r = next(r for r in rows if r["stage"] == s and r["events"] == n)
            cells.append(f"{r['seconds']:.1f} / {r['shuffle_bytes'] / 2**20:.0f} / "
                         f"{r['peak_jvm_rss'] / 2**30:.1f} / {r['peak_python_rss'] / 2**30:.1f}")  # fmt: skip
        print(f"| {s} | " + " | ".join(cells) + f" | {fits.get(s, math.nan):.2f} |")


if __name__ == "__main__":
    main()
