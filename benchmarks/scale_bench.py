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
    ap.add_argument(
        "--render",
        nargs="+",
        metavar="SCALE_JSON",
        help="print the table of saved runs (later files win per size and stage); with --svg "
        "also write the log-log plot",
    )
    ap.add_argument("--svg", default="", help="with --render: write the plot here")
    ap.add_argument("--config", default="", help="a TOML profile (default: the built-in defaults)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    stages = args.stages.split(",")
    if args.render:
        merged: dict[tuple[int, str], dict] = {}
        for f in args.render:
            for r in json.loads(Path(f).read_text())["rows"]:
                merged[(r["events"], r["stage"])] = r
        rows = sorted(merged.values(), key=lambda r: (r["events"], stages.index(r["stage"])))
        print(render(rows, stages))
        if args.svg:
            Path(args.svg).write_text(svg_plot(rows, stages))
        return
    sizes = [int(x) for x in args.events.split(",")]
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
    machine = {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
               "python": platform.python_version()}  # fmt: skip
    (out / "scale.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"\nmachine: {machine}\n")
    print(render(rows, stages))


def render(rows: list[dict], stages: list[str]) -> str:
    """The markdown table: per stage and size seconds / shuffle MiB / peak JVM / Python GiB,
    the exponent b of time ∝ events^b fitted over every size, and b between the two largest
    sizes (fixed start-up costs flatten the first; the second is closer to the asymptote)."""
    sizes = sorted({r["events"] for r in rows})
    lines = [
        "| stage | "
        + " | ".join(f"{n / 1e6:g}M events: s / shuffle MiB / JVM GiB / Py GiB" for n in sizes)
        + " | b (all) | b (last two) |",
        "|---|" + "---|" * (len(sizes) + 2),
    ]
    for s in stages:
        got = {r["events"]: r for r in rows if r["stage"] == s}
        cells = []
        for n in sizes:
            r = got.get(n)
            cells.append(
                "–"
                if r is None
                else f"{r['seconds']:.1f} / {r['shuffle_bytes'] / 2**20:.0f} / "
                f"{r['peak_jvm_rss'] / 2**30:.1f} / {r['peak_python_rss'] / 2**30:.1f}"
            )
        ns = sorted(got)
        b = growth_exponent(ns, [got[n]["seconds"] for n in ns]) if len(ns) > 1 else math.nan
        last = (
            growth_exponent(ns[-2:], [got[n]["seconds"] for n in ns[-2:]])
            if len(ns) > 1
            else math.nan
        )
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {b:.2f} | {last:.2f} |")
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
