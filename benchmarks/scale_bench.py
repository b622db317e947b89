"""How WalkRank's cost grows with the number of events, stage by stage.

For each size N (events) it generates a synthetic log (`walkrank generate`, seed fixed), then
runs the pipeline as a user does: one `walkrank run` with the given config (default: the
built-in defaults, fit pass and learned ranker included; pass `--set llm.enabled=false` to
leave the LLM stages out), recording per stage (the fit pass's as fit/<stage>):
- wall time (the runner's "[stage] done in Xs" line);
- shuffle bytes written, bytes spilled to disk and the executors' CPU seconds, summed over
  the tasks of the Spark event log whose job group is the stage (pipelines/stage.py names it).
  The CPU is the JVM task threads' only: not the Python workers' (ppr's walks, the kernels in
  mapInArrow) nor the driver's (evaluate, fit_ranker's training);
- peak memory while the stage's log lines are the latest, sampled with psutil: the driver's
  Python process and the JVM (local mode: driver and executors) by RSS every 0.2 s, Spark's
  Python workers by PSS every second (they fork from one daemon and share most pages, so
  summed RSS would count them many times). PSS makes the kernel walk a process's page
  tables; read for the JVM too, every 0.2 s, it slowed the stages it measured (RESULTS.md,
  "The one-commit run at `e893cd3`"). The whole-run row's `bench_cpu_s` is this process's
  own CPU time (sampler and log relay) during the run.
A size whose run was killed (e.g. by the end of a session) is measured by running the same
command again: the runner resumes the run directory, and the stages finished before come from
<out>/stages-<N>.jsonl (each was measured whole in one process; the whole-run row then adds
their seconds to the last process's wall time). Sizes already in <out>/scale.json are kept.
To measure a size again from scratch, delete <out>/run-<N>, ev-<N> and stages-<N>.jsonl.
Then it fits time ∝ N^b per stage (least squares on log-log) and prints markdown tables.
`--per-stage` runs each named stage in its own process instead (old vs new code of one stage).

    python benchmarks/scale_bench.py --events 1000000,5000000,20000000 --out /tmp/scale \\
        --set llm.enabled=false
    python benchmarks/scale_bench.py --events 100000,300000 --out /tmp/scale-small  # quick
    python benchmarks/scale_bench.py --render A/scale.json B/scale.json --svg plot.svg

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


SAMPLE_S = 0.2
PSS_EVERY = 5  # samples: the workers' PSS once a second


def _sample_tree(pid: int, peaks: dict[str, dict[str, int]], current: list[str],
                 stop: threading.Event) -> None:  # fmt: skip
    """Until `stop`: the memory of the process tree under `pid`, as the peaks of the stage
    named by current[0]: the driver's Python process and the JVM (RSS, every SAMPLE_S), the
    other Python processes (Spark's workers, PSS summed, every PSS_EVERY samples)."""
    tick = 0
    while not stop.is_set():
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        read_pss = tick % PSS_EVERY == 0
        now = {"driver": 0, "jvm": 0, **({"python": 0} if read_pss else {})}
        for p in procs:
            try:
                if p.pid == pid:
                    now["driver"] = p.memory_info().rss
                elif "java" in p.name():
                    now["jvm"] += p.memory_info().rss
                elif read_pss:
                    try:
                        now["python"] += p.memory_full_info().pss
                    except (psutil.AccessDenied, AttributeError):
                        now["python"] += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        peak = peaks.setdefault(current[0], {"driver": 0, "jvm": 0, "python": 0})
        for k, v in now.items():
            peak[k] = max(peak[k], v)
        tick += 1
        stop.wait(SAMPLE_S)


_METRICS = ("shuffle", "spill", "cpu_ns")


def spark_metrics(event_dir: Path) -> dict[str | None, dict[str, int]]:
    """{job group: shuffle bytes written, bytes spilled to disk and executor CPU nanoseconds}
    summed over the tasks of the Spark event logs in event_dir. The runner names each job's
    group after its stage (pipelines/stage.py); jobs outside any stage count under None."""
    group_of_stage: dict[int, str | None] = {}
    out: dict[str | None, dict[str, int]] = {}
    logs = [p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "app"))]
    for log in logs:
        with log.open() as fh:
            for line in fh:
                if '"SparkListenerJobStart"' in line:
                    ev = json.loads(line)
                    group = (ev.get("Properties") or {}).get("spark.jobGroup.id")
                    for sid in ev.get("Stage IDs", []):
                        group_of_stage[sid] = group
                elif '"SparkListenerTaskEnd"' in line:
                    ev = json.loads(line)
                    m = ev.get("Task Metrics") or {}
                    row = out.setdefault(
                        group_of_stage.get(ev.get("Stage ID")), dict.fromkeys(_METRICS, 0)
                    )
                    row["shuffle"] += (m.get("Shuffle Write Metrics") or {}).get(
                        "Shuffle Bytes Written", 0
                    )
                    row["spill"] += m.get("Disk Bytes Spilled", 0)
                    row["cpu_ns"] += m.get("Executor CPU Time", 0)
    return out


_DONE = re.compile(r"^\[([\w/]+)\] done in ([0-9.]+)s")
_TAG = re.compile(r"^\[([\w/]+)\] ")


def _journal(path: Path | None) -> dict[str, dict]:
    """{stage: {seconds, peak}} that earlier processes of this run finished (one JSON line
    each, appended as each stage finished)."""
    if path is None or not path.exists():
        return {}
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {e["stage"]: e for e in entries}


def run_walkrank(
    data: Path, out: Path, events_dir: Path, sets: list[str], config: str = "",
    stages: str = "", journal: Path | None = None,
) -> list[dict]:  # fmt: skip
    """One `walkrank run` (of `stages`, default: the whole plan) with Spark event logs on:
    a row per stage that ran, in order — its seconds (the runner's "done in" line), shuffle
    bytes, bytes spilled to disk, and the peak memory of the driver's Python process, the
    JVM and the Python workers while its log lines were the latest.

    With a `journal`, each finished stage is appended to it as it finishes, so a run that is
    killed (a session's end) and resumed (the runner skips committed stages) still reports
    every stage: the ones an earlier process finished come from the journal, each measured
    whole in one process, their shuffle and spill from the same event-log directory."""
    events_dir.mkdir(parents=True, exist_ok=True)
    earlier = _journal(journal)
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--input", str(data), "--out", str(out),
           "--run-id", "r",
           "--set", "spark.conf={'spark.eventLog.enabled' = 'true', "
                    f"'spark.eventLog.dir' = '{events_dir}', 'spark.eventLog.compress' = 'false', "
                    "'spark.eventLog.rolling.enabled' = 'false'}"]  # fmt: skip
    if stages:
        cmd += ["--stages", stages]
    if config:
        cmd += ["--config", config]
    for s in sets:
        cmd += ["--set", s]
    peaks: dict[str, dict[str, int]] = {}
    current = ["(start)"]
    stop = threading.Event()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(
        target=_sample_tree, args=(proc.pid, peaks, current, stop), daemon=True
    )
    sampler.start()
    done: list[tuple[str, float]] = []
    tail: list[str] = []
    for line in proc.stderr:
        sys.stderr.write(line)
        tail = [*tail[-50:], line]
        if m := _TAG.match(line):
            current[0] = m.group(1)
        if m := _DONE.match(line):
            done.append((m.group(1), float(m.group(2))))
            if journal is not None:
                entry = {"stage": m.group(1), "seconds": float(m.group(2)), "process": proc.pid,
                         "peak": dict(peaks.get(m.group(1), {}))}  # fmt: skip
                with journal.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")
    proc.wait()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"walkrank run failed:\n{''.join(tail)}")
    metrics = spark_metrics(events_dir)
    if len(done) == 1 and not earlier:  # one stage: every job is its own (also for code
        # without job groups)
        metrics = {done[0][0]: {k: sum(m[k] for m in metrics.values()) for k in _METRICS}}
    ran = dict(done)
    finished = [(s, e["seconds"]) for s, e in earlier.items() if s not in ran] + done
    rows = []
    for stage, seconds in finished:
        peak = peaks.get(stage) if stage in ran else earlier[stage]["peak"]
        peak = {"driver": 0, "jvm": 0, "python": 0, **(peak or {})}
        m = metrics.get(stage, dict.fromkeys(_METRICS, 0))
        rows.append({
            "stage": stage, "seconds": seconds,
            **({} if stage in ran else {"resumed": True, "process": earlier[stage].get("process")}),
            "shuffle_bytes": m["shuffle"], "spill_bytes": m["spill"],
            "executor_cpu_s": round(m["cpu_ns"] / 1e9, 1), "peak_driver_rss": peak["driver"],
            "peak_jvm_rss": peak["jvm"], "peak_python_rss": peak["python"],
        })  # fmt: skip
    return rows


def run_stage(
    stage: str, data: Path, out: Path, events_dir: Path, sets: list[str], config: str = ""
) -> dict:
    """One stage alone in its own `walkrank run --stages <stage>` process (run_walkrank)."""
    t0 = time.perf_counter()
    rows = run_walkrank(data, out, events_dir, sets, config, stages=stage)
    row = next((r for r in rows if r["stage"] == stage), {"stage": stage, "seconds": math.nan})
    return {**row, "process_seconds": round(time.perf_counter() - t0, 2)}


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
    ap.add_argument(
        "--per-stage",
        metavar="STAGES",
        default="",
        help="instead of one whole run per size, each of these stages in its own process "
        f"(e.g. {','.join(STAGES)})",
    )
    ap.add_argument(
        "--render",
        nargs="+",
        metavar="SCALE_JSON",
        help="print the tables of saved runs (later files win per size and stage); with --svg "
        "also write the log-log plot",
    )
    ap.add_argument("--svg", default="", help="with --render: write the plot here")
    ap.add_argument("--config", default="", help="a TOML profile (default: the built-in defaults)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if args.render:
        merged: dict[tuple[int, str], dict] = {}
        for f in args.render:
            for r in json.loads(Path(f).read_text())["rows"]:
                merged[(r["events"], r["stage"])] = r
        rows = sorted(merged.values(), key=lambda r: r["events"])
        print(render(rows))
        if args.svg:
            Path(args.svg).write_text(svg_plot(rows, stage_order(rows)))
        return
    sizes = [int(x) for x in args.events.split(",")]
    out = Path(args.out)
    machine = {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
               "python": platform.python_version()}  # fmt: skip
    saved = out / "scale.json"
    # Sizes measured before (another invocation into the same --out) are kept.
    rows = json.loads(saved.read_text())["rows"] if saved.exists() else []
    for n in sizes:
        data = out / f"data-{n}"
        if not (data / "_generator.json").exists():
            subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "generate", "--events", str(n),
                 "--seed", str(args.seed), "--out", str(data)],
                cwd=ROOT, check=True,
            )  # fmt: skip
        run_dir = out / f"run-{n}"
        if args.per_stage:
            got = [run_stage(s, data, run_dir, out / f"ev-{n}-{s}", args.sets, args.config)
                   for s in args.per_stage.split(",")]  # fmt: skip
        else:
            journal = out / f"stages-{n}.jsonl"
            t0, cpu0 = time.perf_counter(), time.process_time()
            got = run_walkrank(
                data, run_dir, out / f"ev-{n}", args.sets, args.config, journal=journal
            )
            # A resumed run: the earlier processes' stages count with their own seconds.
            whole = whole_run(got, time.perf_counter() - t0 + resumed_seconds(got))
            got.append({**whole, "bench_cpu_s": round(time.process_time() - cpu0, 1)})
        rows = [r for r in rows if r["events"] != n]
        for row in got:
            rows.append({"events": n, **row})
            print(json.dumps(rows[-1]), flush=True)
        # Written after each size: a later size that fails keeps the earlier ones.
        (out / "scale.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"\nmachine: {machine}\n")
    print(render(rows))


RUN = "whole run"


def resumed_seconds(rows: list[dict]) -> float:
    """Seconds of the stages that earlier processes of a resumed run finished. `fit_ranker`'s
    seconds contain the fit/* stages that ran in its own process, so those are not added
    again (journal entries without a process, from before it was recorded, all count)."""
    fit_process = next((r.get("process") for r in rows if r["stage"] == "fit_ranker"), None)
    return sum(
        r["seconds"]
        for r in rows
        if r.get("resumed")
        and not (
            fit_process is not None
            and r["stage"].startswith("fit/")
            and r.get("process") == fit_process
        )
    )


def whole_run(rows: list[dict], seconds: float) -> dict:
    """The row of the whole `walkrank run`: its wall time (process start-up included), the
    sums of shuffle, spill and executor CPU, and the peaks over its stages."""
    return {
        "stage": RUN,
        "seconds": round(seconds, 1),
        "shuffle_bytes": sum(r["shuffle_bytes"] for r in rows),
        "spill_bytes": sum(r["spill_bytes"] for r in rows),
        "executor_cpu_s": round(sum(r.get("executor_cpu_s", 0) for r in rows), 1),
        **{k: max((r[k] for r in rows), default=0)
           for k in ("peak_driver_rss", "peak_jvm_rss", "peak_python_rss")},
    }  # fmt: skip


def stage_order(rows: list[dict]) -> list[str]:
    """Stage names in the order they first ran (the whole-run row last)."""
    names = list(dict.fromkeys(r["stage"] for r in rows if r["stage"] != RUN))
    return names + ([RUN] if any(r["stage"] == RUN for r in rows) else [])


def render(rows: list[dict]) -> str:
    """Two markdown tables. Seconds per stage and size, with the exponent b of time ∝
    events^b fitted over every size and between the two largest (fixed start-up costs
    flatten the first; the second is closer to the asymptote), and b of the executors' CPU
    seconds between the two largest (the machine's speed drifts less into it than into wall
    time). Then per size: shuffle and spill MiB, and peak GiB of the driver's Python
    process, the JVM and the Python workers."""
    sizes = sorted({r["events"] for r in rows})
    stages = stage_order(rows)
    got = {(r["events"], r["stage"]): r for r in rows}
    lines = [
        "| stage | " + " | ".join(f"{n / 1e6:g}M events: s" for n in sizes)
        + " | b (all) | b (last two) | b of executor CPU (last two) |",
        "|---|" + "---:|" * (len(sizes) + 3),
    ]  # fmt: skip
    for s in stages:
        ns = [n for n in sizes if (n, s) in got]
        cells = [f"{got[n, s]['seconds']:.1f}" if (n, s) in got else "–" for n in sizes]
        secs = [got[n, s]["seconds"] for n in ns]
        b = growth_exponent(ns, secs) if len(ns) > 1 else math.nan
        last = growth_exponent(ns[-2:], secs[-2:]) if len(ns) > 1 else math.nan
        cpu = [got[n, s].get("executor_cpu_s", 0) for n in ns[-2:]]
        cpu_b = growth_exponent(ns[-2:], cpu) if len(ns) > 1 and min(cpu) > 0 else math.nan
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {b:.2f} | {last:.2f} | {cpu_b:.2f} |")
    lines += ["", "| stage | " + " | ".join(
        f"{n / 1e6:g}M: shuffle / spill MiB, driver / JVM / workers GiB" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes)]  # fmt: skip
    for s in stages:
        cells = []
        for n in sizes:
            r = got.get((n, s))
            cells.append(
                "–"
                if r is None
                else f"{r['shuffle_bytes'] / 2**20:,.0f} / {r.get('spill_bytes', 0) / 2**20:,.0f}, "
                f"{r.get('peak_driver_rss', 0) / 2**30:.1f} / {r['peak_jvm_rss'] / 2**30:.1f} / "
                f"{r['peak_python_rss'] / 2**30:.1f}"
            )
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def svg_plot(rows: list[dict], stages: list[str], width: int = 560, height: int = 360) -> str:
    """Seconds against events per stage on log-log axes, as a self-contained SVG."""
    pad_l, pad_r, pad_t, pad_b = 60, 110, 20, 40
    xs = sorted({r["events"] for r in rows})
    ys = [r["seconds"] for r in rows if r["stage"] in stages]
    x0, x1 = math.log10(xs[0]) - 0.05, math.log10(xs[-1]) + 0.05
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(n: float) -> float:
        return pad_l + (math.log10(n) - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def py(sec: float) -> float:
        return height - pad_b - (math.log10(sec) - y0) / (y1 - y0) * (height - pad_t - pad_b)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for e in range(y0, y1 + 1):
        y = py(10**e)
        out.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{10**e:g} s</text>')
    for n in xs:
        x = px(n)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{height - pad_b}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{height - pad_b + 16}" text-anchor="middle">{n / 1e6:g}M</text>'
        )
    out.append(f'<text x="{(pad_l + width - pad_r) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
               "events (log)</text>")  # fmt: skip
    # Reference: linear growth (b = 1) from the lowest first point.
    t_ref = min(r["seconds"] for r in rows if r["events"] == xs[0] and r["stage"] in stages)
    out.append(
        f'<line x1="{px(xs[0]):.1f}" y1="{py(t_ref):.1f}" x2="{px(xs[-1]):.1f}" '
        f'y2="{py(t_ref * xs[-1] / xs[0]):.1f}" stroke="#999" stroke-dasharray="5,4"/>'
    )
    out.append(f'<text x="{width - pad_r + 8}" y="{pad_t + 14 * len(stages) + 8}" fill="#999">'
               "linear (b = 1)</text>")  # fmt: skip
    for i, s in enumerate(stages):
        pts = sorted((r["events"], r["seconds"]) for r in rows if r["stage"] == s)
        c = colors[i % len(colors)]
        path = " ".join(f"{px(n):.1f},{py(t):.1f}" for n, t in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for n, t in pts:
            out.append(f'<circle cx="{px(n):.1f}" cy="{py(t):.1f}" r="3" fill="{c}"/>')
        ly = pad_t + 14 * i + 8
        out.append(f'<text x="{width - pad_r + 8}" y="{ly}" fill="{c}">{s}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
