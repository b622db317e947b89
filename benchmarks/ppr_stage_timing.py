"""Whole `ppr` stage wall time, cold and warm, on an existing run directory.

One process: start Spark, warm the JVM with a Parquet read/write, then run the ppr stage
twice ("cold": fresh Python workers, as in `walkrank run`; "warm": reused workers). Prints
stage wall time, walk steps per second of the whole stage, and the CPU seconds of the JVM and
the Python workers (live descendants of this process, from /proc; Linux only).

    .venv/bin/python benchmarks/ppr_stage_timing.py RUN_DIR [--set ppr.kernel=numba ...]

To time another version of the code (e.g. the commit before a change), extract it with
`git archive <commit> | tar -x -C /tmp/old` and run this file with `PYTHONPATH=/tmp/old` from
/tmp/old. RUN_DIR must hold committed graph_nodes, graph_edges and train tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: it wins
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def tree_cpu() -> dict[str, float]:
    """CPU seconds (user + sys, plus reaped children's) of this process's descendants, by
    command name (java, python)."""
    tck = os.sysconf("SC_CLK_TCK")
    kids: dict[int, list[tuple[int, float]]] = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        f = st[st.rindex(")") + 2 :].split()
        kids.setdefault(int(f[1]), []).append((int(p), sum(map(int, f[11:15])) / tck))
    out: dict[str, float] = {}
    stack = [os.getpid()]
    while stack:
        for child, cpu in kids.get(stack.pop(), []):
            try:
                name = Path(f"/proc/{child}/comm").read_text().strip()
            except OSError:
                name = "?"
            out[name] = out.get(name, 0.0) + cpu
            stack.append(child)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--set", action="append", default=[], help="config override, repeatable")
    a = p.parse_args(argv)
    import pipelines
    from pipelines import tableio
    from pipelines.config import load_config
    from pipelines.runner import run_stages
    from pipelines.spark_session import get_spark
    from pipelines.stage_registry import STAGES

    cfg = load_config(None, ['spark.conf={"spark.ui.showConsoleProgress"="false"}', *a.set])
    spark = get_spark(cfg.spark)
    with tempfile.TemporaryDirectory() as tmp:  # JIT-warm the JVM's Parquet path
        tableio.read_spark(spark, a.run_dir, "graph_edges").write.parquet(f"{tmp}/warm")
    for label in ("cold", "warm"):
        c0, t0 = tree_cpu(), time.perf_counter()
        run_stages(a.run_dir, cfg, [STAGES["ppr"]], force=True)
        wall = time.perf_counter() - t0
        c1 = tree_cpu()
        cpu = {k: round(c1.get(k, 0.0) - c0.get(k, 0.0), 2) for k in ("java", "python")}
        steps = tableio.read_manifest(a.run_dir, "item_ppr")["extra"]["steps"]
        print(
            f"{label}: stage {wall:.2f} s, {steps:,} steps, {steps / wall / 1e6:.2f}M steps/s, "
            f"CPU s {cpu}, load {os.getloadavg()[0]:.1f} (code: {Path(pipelines.__file__).parent})"
        )
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
