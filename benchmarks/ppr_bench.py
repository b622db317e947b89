"""PPR benchmark (issue 3): both strategies against two baselines, speed and accuracy.

Graphs: the Amazon Toys item-transition graph (ingest -> split -> graph, as `walkrank run`),
the same for a generated log (`walkrank generate`, `--generated-events`), and a synthetic
power-law graph (~1M edges).  Per graph, in one process and one run:

* broadcast strategy: the whole `ppr` stage (Spark included, all sources, default walks),
  kernel `numba` (default, run `--repeats` times: the first is cold, as in `walkrank run`)
  and `numpy` (the vectorised reference kernel);
* distributed strategy: `ppr_distributed` on a sample of sources, extrapolated linearly;
* baseline "networkx": `networkx.pagerank(G, alpha=1 - ppr.alpha, personalization={s: 1},
  weight="weight")` per source on a sample, extrapolated to all sources;
* baseline "naive Spark": one join per step with no alias tables (walkers join all out-edges
  of their node and keep the one whose cumulative-probability interval holds rand(seed)), on
  a sample of sources, extrapolated;
* baseline "GraphX": `PageRank.runParallelPersonalizedPageRank`, the routine GraphFrames'
  `parallelPersonalizedPageRank` runs (GraphX ships with Spark; the GraphFrames JAR is not
  needed for it), at reset probability ppr.alpha for `--graphx-iterations` iterations, on the
  Spark walks' sources (or `--graphx-sources`), extrapolated. GraphX's PageRank ignores edge
  weights, so its top-10 is also scored against exact PPR of the unweighted graph.
Accuracy: against exact PPR on `--accuracy-sources` sampled sources (batched power iteration
with networkx's conventions, itself checked against networkx.pagerank on a few sources):
L1 over the union of both top-k lists (source excluded) and top-10 overlap on sources with at
least 10 reachable nodes.  Writes JSON (`--out`) and prints a markdown table.

    .venv/bin/python benchmarks/ppr_bench.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/ppr_bench.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from benchmarks.ppr_baselines import (  # noqa: E402
    accuracy,
    exact_ppr_batch,
    graphx_iterations,
    graphx_ppr,
    naive_spark_walks,
    networkx_ppr,
)
from pipelines import tableio  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.runner import run_stages  # noqa: E402
from pipelines.stage_registry import STAGES  # noqa: E402

AMAZON = ROOT.parent / "shared" / "datasets" / "amazon-toys" / "Toys_and_Games.txt"


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--graphs", default="amazon,powerlaw", help="comma list: amazon,generated,powerlaw"
    )
    p.add_argument("--generated-events", type=int, default=1_000_000)
    p.add_argument("--amazon", type=Path, default=AMAZON, help="Toys_and_Games.txt (sequences)")
    p.add_argument("--powerlaw-nodes", type=int, default=50_000)
    p.add_argument("--powerlaw-edges", type=int, default=1_000_000)
    p.add_argument("--walks", type=int, default=2000, help="walks per source (ppr default)")
    p.add_argument("--accuracy-sources", type=int, default=200)
    # The two Spark walks share one sample size: their per-step job overhead is amortised over
    # the walkers, so per-source costs are only comparable at equal sample sizes.
    p.add_argument(
        "--spark-sources",
        default="40",
        help="distributed/naive sources: N (the first N of the accuracy sample, topped up with "
        "other random sources beyond it) or 'all'",
    )
    p.add_argument(
        "--distributed-all",
        action="store_true",
        help="also run the distributed strategy on all sources (the whole ppr stage; slow)",
    )
    p.add_argument(
        "--distributed-methods",
        default="steps",
        help="comma list of distributed walk methods to run on the Spark sources: steps,doubling",
    )
    p.add_argument(
        "--no-broadcast-joins",
        action="store_true",
        help="spark.sql.autoBroadcastJoinThreshold=-1 for the Spark walks: the naive walk then "
        "shuffles its walkers and the edges every step, as it must when the graph does not fit "
        "in memory (the distributed strategy's case)",
    )
    p.add_argument(
        "--graphx-iterations",
        type=int,
        default=0,
        help="GraphX power iterations (0: until (1 - ppr.alpha)^n < 1e-3, the walks' budget)",
    )
    p.add_argument(
        "--graphx-sources",
        default="spark",
        help="GraphX sources: 'spark' (the Spark walks' sources), N or 'all' as --spark-sources",
    )
    p.add_argument("--nx-sources", type=int, default=10, help="networkx timing sample")
    p.add_argument("--repeats", type=int, default=2, help="broadcast stage runs per kernel")
    p.add_argument("--skip-kernel", default="", help="broadcast kernels not to run: numpy,numba")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ppr_bench.json")
    p.add_argument("--render", type=Path, default=None, help="print the table of a results JSON")
    return p.parse_args(argv)


def machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # Linux
    import numba
    import pyspark

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "load_average_start": os.getloadavg(),
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "numba": numba.__version__,
    }


def _config(sets: list[str]):
    return load_config(None, ['spark.conf={"spark.ui.showConsoleProgress"="false"}', *sets])


def amazon_graph(work: Path, path: Path, seed: int) -> Path:
    run = work / "amazon"
    sets = [f"ingest.input={json.dumps(str(path))}", "ingest.format=sequences"]
    cfg = _config([*sets, f"run.seed={seed}"])
    run_stages(run, cfg, [STAGES["ingest"], STAGES["split"], STAGES["graph"]])
    return run


def generated_graph(work: Path, events: int, seed: int) -> Path:
    """ingest -> split -> graph over `walkrank generate --events N --seed seed`'s log."""
    from pipelines.api import input_sets
    from pipelines.synthetic_logs import generate_logs

    log = work / "generated_log"
    generate_logs(events, seed, log, progress=False)
    run = work / "generated"
    cfg = _config([*input_sets(str(log)), f"run.seed={seed}"])
    run_stages(run, cfg, [STAGES["ingest"], STAGES["split"], STAGES["graph"]])
    return run


def powerlaw_graph_run(work: Path, n: int, nnz: int, seed: int) -> Path:
    """graph_nodes / graph_edges tables of tests.graph_fixtures.power_law_graph (+ an empty
    train table, which the ppr stage declares as an input)."""
    import pyarrow as pa

    from schemas import contract
    from tests.graph_fixtures import power_law_graph

    run = work / "powerlaw"
    indptr, indices, prob, w = power_law_graph(n, nnz, seed)
    src = np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))
    out_w = np.bincount(src, weights=w, minlength=n)
    edges = pa.table(
        {
            "src": pa.array(src, pa.int32()),
            "dst": pa.array(indices, pa.int32()),
            "weight": w,
            "count": pa.array(np.ones(len(w), np.int64)),
            "prob": prob,
        }
    )
    nodes = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int32)),
            "item_id": pa.array([f"i{i}" for i in range(n)]),
            "out_degree": pa.array(np.diff(indptr).astype(np.int32)),
            "in_degree": pa.array(np.bincount(indices, minlength=n).astype(np.int32)),
            "out_weight": out_w,
        }
    )
    kw = dict(stage="bench", stage_key="bench")
    tableio.write_table(run, "graph_edges", edges, **kw)
    tableio.write_table(run, "graph_nodes", nodes, **kw)
    tableio.write_table(run, "train", contract("train").empty(), **kw)
    return run


def stage_run(run: Path, sets: list[str]) -> dict:
    """Whole ppr stage wall time (Spark included) and its manifest figures."""
    cfg = _config(sets)
    t0 = time.perf_counter()
    run_stages(run, cfg, [STAGES["ppr"]], force=True)
    wall = time.perf_counter() - t0
    extra = tableio.read_manifest(run, "item_ppr")["extra"]
    return {
        "wall_s": round(wall, 3),
        "steps": extra["steps"],
        "walks": extra["walks"],
        "sources": extra["sources"],
        "steps_per_s": round(extra["steps"] / wall, 1),
    }


def spark_sources(spec: str, sample: np.ndarray, all_sources: np.ndarray, rng) -> np.ndarray:
    """The sources both Spark walks run on: 'all', or the first N of the accuracy sample and,
    past its size, other random sources (accuracy is measured on the sample's part)."""
    if spec == "all":
        return all_sources
    n = int(spec)
    if n <= len(sample):
        return sample[:n]
    rest = np.setdiff1d(all_sources, sample)
    extra = rng.choice(rest, size=min(n - len(sample), len(rest)), replace=False)
    return np.sort(np.concatenate([sample, extra]))


def _collect_top_k(df) -> dict[int, dict[int, float]]:
    """A materialised top-k DataFrame -> {src: {dst: score}} (not timed: both walks end with
    their table materialised in Spark, as the ppr stage's would be before its write)."""
    t = df.select("src", "dst", "score").toArrow()
    return _rows_by_source(*(t.column(c).to_numpy() for c in ("src", "dst", "score")))


def _rows_by_source(src, dst, score) -> dict[int, dict[int, float]]:
    out: dict[int, dict[int, float]] = {}
    for s, d, x in zip(src.tolist(), dst.tolist(), score.tolist(), strict=True):
        out.setdefault(s, {})[d] = x
    return out


def bench_graph(name: str, run: Path, spark, a) -> dict:
    from pipelines.ppr.distributed import ppr_distributed

    print(f"== {name}", file=sys.stderr, flush=True)
    edges = tableio.read_arrow(run, "graph_edges", columns=["src", "dst", "weight", "prob"])
    nodes = tableio.read_arrow(run, "graph_nodes", columns=["id", "out_degree"])
    n = int(nodes.column("id").to_numpy().max()) + 1
    all_sources = np.sort(nodes.column("id").to_numpy()[nodes.column("out_degree").to_numpy() > 0])
    cfg = _config([f"ppr.walks_per_node={a.walks}"]).ppr
    alpha, k = cfg.alpha, cfg.top_k
    rng = np.random.default_rng(a.seed)
    sample = np.sort(
        rng.choice(all_sources, size=min(a.accuracy_sources, len(all_sources)), replace=False)
    )
    res: dict = {"nodes": n, "edges": edges.num_rows, "sources": len(all_sources), "methods": {}}
    m = res["methods"]
    walks = [f"ppr.walks_per_node={a.walks}", f"run.seed={a.seed}"]

    t0 = time.perf_counter()
    exact = exact_ppr_batch(edges, n, sample, alpha)
    res["exact_solver_s"] = round(time.perf_counter() - t0, 2)

    # The default kernel first: its first run is cold (Python workers start), as in `walkrank run`.
    default_kernel = _config([]).ppr.kernel
    for kern in sorted(("numpy", "numba"), key=lambda x: x != default_kernel):
        if kern in a.skip_kernel.split(","):
            continue
        runs = []
        for i in range(a.repeats):
            runs.append(stage_run(run, [*walks, "ppr.strategy=broadcast", f"ppr.kernel={kern}"]))
            print(f"  broadcast/{kern} run {i + 1}: {runs[-1]}", file=sys.stderr, flush=True)
        got = tableio.read_arrow(run, "item_ppr")
        est = _rows_by_source(*(got.column(c).to_numpy() for c in ("src", "dst", "score")))
        best = min(runs, key=lambda r: r["wall_s"])
        m[f"broadcast ({kern} kernel)"] = {
            **best,
            "first_run_wall_s": runs[0]["wall_s"],
            "runs": runs,
            **accuracy(est, exact, sample, k),
        }

    dsrc = spark_sources(a.spark_sources, sample, all_sources, rng)
    acc_src = sample if len(dsrc) >= len(sample) else dsrc  # rows of `exact`, in order
    edges_df = tableio.read_spark(spark, run, "graph_edges")
    sdf = spark.createDataFrame([(int(s),) for s in dsrc], "src int")
    for method in a.distributed_methods.split(","):
        t0 = time.perf_counter()
        out, st = ppr_distributed(spark, edges_df, sdf, cfg, a.seed, method=method)  # materialised
        wall = time.perf_counter() - t0
        est = _collect_top_k(out)
        name = "distributed" if method == "steps" else f"distributed ({method})"
        m[name] = {
            "wall_s": round(wall, 3),
            "steps": st["steps"],
            "walks": st["walks"],
            "sources": len(dsrc),
            "steps_per_s": round(st["steps"] / wall, 1),
            "method": st["method"],
            **accuracy(est, exact, acc_src, k),
        }
        print(f"  {name}: {m[name]}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    out, steps = naive_spark_walks(spark, edges_df, dsrc, a.walks, alpha, a.seed, k)
    wall = time.perf_counter() - t0
    est = _collect_top_k(out)
    m["naive Spark walk"] = {
        "wall_s": round(wall, 3),
        "steps": steps,
        "walks": len(dsrc) * a.walks,
        "sources": len(dsrc),
        "steps_per_s": round(steps / wall, 1),
        **accuracy(est, exact, acc_src, k),
    }
    print(f"  naive: {m['naive Spark walk']}", file=sys.stderr, flush=True)

    m["GraphX parallel PPR"] = graphx_run(spark, run, edges, n, sample, exact, dsrc, rng, a)
    print(f"  graphx: {m['GraphX parallel PPR']}", file=sys.stderr, flush=True)

    if a.distributed_all:
        r = stage_run(run, [*walks, "ppr.strategy=distributed"])
        got = tableio.read_arrow(run, "item_ppr")
        est = _rows_by_source(*(got.column(c).to_numpy() for c in ("src", "dst", "score")))
        m["distributed (all sources)"] = {**r, **accuracy(est, exact, sample, k)}
        print(f"  distributed, all sources: {r}", file=sys.stderr, flush=True)

    xsrc = sample[: a.nx_sources]
    est, seconds, check = networkx_ppr(edges, n, xsrc, alpha, k, exact[: len(xsrc)])
    m["networkx exact"] = {
        "wall_s": round(seconds, 3),
        "sources": len(xsrc),
        "solver_max_l1_vs_networkx": check,
        **accuracy(est, exact, xsrc, k),
    }
    print(f"  networkx: {m['networkx exact']}", file=sys.stderr, flush=True)

    for v in m.values():  # per source, and extrapolated to every source
        if "error" in v:
            continue
        v["ms_per_source"] = round(1000 * v["wall_s"] / v["sources"], 3)
        v["all_sources_s"] = round(v["wall_s"] * len(all_sources) / v["sources"], 1)
    ref = m[f"broadcast ({default_kernel} kernel)"]["ms_per_source"]
    for v in m.values():
        if "error" in v:
            continue
        v["broadcast_speedup"] = round(v["ms_per_source"] / ref, 1)
    return res


def graphx_run(spark, run: Path, edges, n: int, sample, exact, dsrc, rng, a) -> dict:
    """The GraphX baseline on the Spark walks' sources (or --graphx-sources): wall time, top-10
    overlap against exact weighted PPR (what the ppr stage estimates) and against exact PPR of
    the unweighted graph (what GraphX computes); the JVM's error where it fails."""
    import pyarrow as pa

    cfg = _config([]).ppr
    alpha, k = cfg.alpha, cfg.top_k
    iters = a.graphx_iterations or graphx_iterations(alpha)
    all_sources = np.unique(edges.column("src").to_numpy())
    gsrc = (
        dsrc
        if a.graphx_sources == "spark"
        else spark_sources(a.graphx_sources, sample, all_sources, rng)
    )
    acc_src = sample if len(gsrc) >= len(sample) else gsrc
    try:
        est, wall = graphx_ppr(spark, edges, gsrc, alpha, iters, k, run / "graphx")
    except Exception as err:  # Py4JJavaError: out of memory, too many sources, ...
        msg = str(err).strip().splitlines()
        return {
            "error": next((x for x in msg if "Exception" in x or "Error" in x), msg[0]),
            "sources": len(gsrc),
            "iterations": iters,
        }
    unweighted = edges.set_column(
        edges.schema.get_field_index("weight"), "weight", pa.array(np.ones(edges.num_rows))
    )
    exact_u = exact_ppr_batch(unweighted, n, acc_src, alpha)
    return {
        "wall_s": round(wall, 3),
        "sources": len(gsrc),
        "iterations": iters,
        **accuracy(est, exact[: len(acc_src)], acc_src, k),
        "top10_overlap_unweighted": accuracy(est, exact_u, acc_src, k)["top10_overlap"],
    }


def markdown(results: dict) -> str:
    lines = [
        "| graph | method | sources run | walks/source | steps/s | wall s: best (first) | ms/source "
        "| all sources (s) | L1 | top-10 overlap | broadcast speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        # wall (s): best of --repeats stage runs for broadcast (first, cold run in brackets)
    ]
    for g, r in results["graphs"].items():
        label = f"{g} ({r['nodes']:,} nodes, {r['edges']:,} edges)"
        for name, v in r["methods"].items():
            if "error" in v:
                lines.append(f"| {label} | {name} | {v['sources']:,} | – | failed: {v['error']} |")
                continue
            sps = "–"
            if "steps_per_s" in v:
                x = v["steps_per_s"]
                sps = f"{x / 1e6:.1f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"
            w = v["walks"] // v["sources"] if "walks" in v else "exact"
            if "iterations" in v:
                w = f"{v['iterations']} iterations"
            wall = f"{v['wall_s']:.1f}"
            if "first_run_wall_s" in v:
                wall += f" ({v['first_run_wall_s']:.1f})"
            lines.append(
                f"| {label} | {name} | {v['sources']:,} | {w} | {sps} | {wall} "
                f"| {v['ms_per_source']:.2f} | {v['all_sources_s']:,.0f} | {v['l1']:.3f} "
                f"| {v['top10_overlap']:.3f} | {v['broadcast_speedup']:,.1f}x |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    if a.render:
        print(markdown(json.loads(a.render.read_text())))
        return 0
    from pipelines.spark_session import get_spark

    results: dict = {"command": " ".join(["benchmarks/ppr_bench.py", *(argv or sys.argv[1:])])}
    results["machine"] = machine()
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        work = Path(tmp)
        spark = get_spark(_config([]).spark)
        if a.no_broadcast_joins:
            spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        results["graphs"] = {}
        for g in a.graphs.split(","):
            if g == "amazon":
                run = amazon_graph(work, a.amazon, a.seed)
                results["graphs"]["amazon-toys"] = bench_graph("amazon-toys", run, spark, a)
            elif g == "generated":
                run = generated_graph(work, a.generated_events, a.seed)
                label = f"generated-{a.generated_events // 1000}k"
                results["graphs"][label] = bench_graph(label, run, spark, a)
            elif g == "powerlaw":
                run = powerlaw_graph_run(work, a.powerlaw_nodes, a.powerlaw_edges, a.seed)
                results["graphs"]["powerlaw"] = bench_graph("powerlaw", run, spark, a)
            else:
                raise SystemExit(f"unknown graph {g!r}: amazon|generated|powerlaw")
        spark.stop()
    results["machine"]["load_average_end"] = os.getloadavg()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nJSON: {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
