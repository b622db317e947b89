"""benchmarks/scale_bench.py: per-stage sums from a Spark event log, and the CPU exponent."""

from __future__ import annotations

import json
import math

from benchmarks.scale_bench import render, spark_metrics


def _task(stage_id: int, shuffle: int, spill: int, cpu_ns: int) -> dict:
    return {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage_id,
        "Task Metrics": {
            "Shuffle Write Metrics": {"Shuffle Bytes Written": shuffle},
            "Disk Bytes Spilled": spill,
            "Executor CPU Time": cpu_ns,
        },
    }


def test_event_log_sums_per_job_group(tmp_path):
    events = [
        {"Event": "SparkListenerJobStart", "Stage IDs": [0, 1],
         "Properties": {"spark.jobGroup.id": "graph"}},
        {"Event": "SparkListenerJobStart", "Stage IDs": [2], "Properties": {}},
        _task(0, 100, 0, 2_000_000_000),
        _task(1, 50, 7, 500_000_000),
        _task(2, 1, 1, 1_000),
    ]  # fmt: skip
    log = tmp_path / "app-1" / "events_1_app-1"
    log.parent.mkdir()
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    got = spark_metrics(tmp_path)
    assert got["graph"] == {"shuffle": 150, "spill": 7, "cpu_ns": 2_500_000_000}
    assert got[None] == {"shuffle": 1, "spill": 1, "cpu_ns": 1_000}


def test_render_fits_the_cpu_exponent_over_the_two_largest_sizes():
    def row(n, seconds, cpu):
        return {"events": n, "stage": "graph", "seconds": seconds, "executor_cpu_s": cpu,
                "shuffle_bytes": 0, "spill_bytes": 0, "peak_jvm_rss": 0, "peak_python_rss": 0}  # fmt: skip

    # Wall time x 8 over 4x the events (b = 1.5), CPU x 4 (b = 1.0).
    table = render([row(5_000_000, 10.0, 30.0), row(20_000_000, 80.0, 120.0)])
    line = next(x for x in table.splitlines() if x.startswith("| graph |"))
    assert line.split("|")[-4:-1] == [" 1.50 ", " 1.50 ", " 1.00 "]
    no_cpu = render([{**row(5_000_000, 10.0, 0), "executor_cpu_s": 0}, row(20_000_000, 80.0, 1)])
    assert f"| {math.nan:.2f} |" in no_cpu
