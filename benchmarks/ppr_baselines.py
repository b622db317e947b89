"""Baselines and accuracy measures for benchmarks/ppr_bench.py.

* exact PPR for many sources at once (power iteration with networkx's conventions: restart
  to the source with probability alpha, dangling mass back to the source);
* networkx.pagerank per source (the per-source exact baseline, timed);
* a naive Spark random walk: one join per step, no alias tables;
* GraphX's parallel personalized PageRank (the routine GraphFrames' parallelPersonalizedPageRank
  runs), unweighted as GraphX is;
* L1 / top-10 overlap of top-k estimates against the exact vectors.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa


def _csr(edges: pa.Table, n: int):
    import scipy.sparse as sp

    src = edges.column("src").to_numpy().astype(np.int64)
    dst = edges.column("dst").to_numpy().astype(np.int64)
    w = edges.column("weight").to_numpy()
    out_w = np.bincount(src, weights=w, minlength=n)
    p = sp.csr_matrix((w / out_w[src], (src, dst)), shape=(n, n))
    return p, out_w == 0


def exact_ppr_batch(
    edges: pa.Table, n: int, sources: np.ndarray, alpha: float, tol: float = 1e-12
) -> np.ndarray:
    """(len(sources), n) exact PPR: x <- (1 - alpha) (x P + x[dangling] e_s) + alpha e_s,
    iterated (all sources as one sparse-dense product) until the L1 change is below tol."""
    p, dangling = _csr(edges, n)
    pt = p.T.tocsr()
    b = len(sources)
    e = np.zeros((n, b))
    e[np.asarray(sources), np.arange(b)] = 1.0
    x = e.copy()
    d = 1.0 - alpha
    for _ in range(10_000):
        nxt = d * (pt @ x + e * x[dangling].sum(axis=0)) + (1.0 - d) * e
        err = np.abs(nxt - x).sum(axis=0).max()
        x = nxt
        if err < tol:
            break
    return x.T


def networkx_ppr(edges: pa.Table, n: int, sources, alpha: float, k: int, exact: np.ndarray):
    """networkx.pagerank per source (default tolerance) -> (top-k estimates, seconds for the
    calls, max L1 between exact_ppr_batch and networkx at tol=1e-10 on the first 3 sources)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from(
        zip(
            edges.column("src").to_pylist(),
            edges.column("dst").to_pylist(),
            edges.column("weight").to_pylist(),
            strict=True,
        )
    )
    est: dict[int, dict[int, float]] = {}
    t0 = time.perf_counter()
    for s in (int(v) for v in sources):
        pr = nx.pagerank(g, alpha=1.0 - alpha, personalization={s: 1}, weight="weight")
        top = sorted(((x, v) for v, x in pr.items() if v != s), key=lambda t: (-t[0], t[1]))
        est[s] = {v: x for x, v in top[:k]}
    seconds = time.perf_counter() - t0
    check = 0.0
    for i, s in enumerate(sources[:3]):
        pr = nx.pagerank(g, alpha=1.0 - alpha, personalization={int(s): 1}, tol=1e-10)
        vec = np.zeros(n)
        vec[list(pr)] = list(pr.values())
        check = max(check, float(np.abs(vec - exact[i]).sum()))
    return est, seconds, check


def naive_spark_walks(spark, edges_df, sources, walks: int, alpha: float, seed: int, k: int):
    """Monte-Carlo PPR with one Spark join per step and no alias tables: every live walker
    joins *all* out-edges of its node and keeps the edge whose cumulative-probability interval
    [lo, hi) holds its rand(seed) draw (O(degree) rows per walker per step).  Walk model and
    visits estimator as the ppr stage (coin alpha; a dangling node ends the walk); top-k by
    groupBy + window, as plain Spark SQL would.  Returns (materialised DataFrame[src, dst,
    score, rank], top-k without the source; total moves)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("src").orderBy("dst")
    e = (
        edges_df.select("src", "dst", "prob")
        .withColumn("hi", F.sum("prob").over(w.rowsBetween(Window.unboundedPreceding, 0)))
        .withColumn("lo", F.col("hi") - F.col("prob"))
        # The last edge of a row takes any rounding left over: no walker falls through.
        .withColumn("hi", F.when(F.lead("dst").over(w).isNull(), 2.0).otherwise(F.col("hi")))
        .select(F.col("src").alias("pos"), "dst", "lo", "hi")
        .localCheckpoint(eager=True)
    )
    src_df = spark.createDataFrame([(int(s),) for s in sources], "src int")
    walkers = (
        src_df.crossJoin(spark.range(walks).withColumnRenamed("id", "walk"))
        .withColumn("pos", F.col("src"))
        .localCheckpoint(eager=True)
    )
    visits = [walkers.groupBy("src", "pos").count()]
    steps = 0
    for t in range(200):
        live = walkers.filter(F.rand(seed * 1000 + 2 * t) >= alpha).withColumn(
            "u", F.rand(seed * 1000 + 2 * t + 1)
        )
        walkers = (
            live.join(e, "pos")
            .filter((F.col("u") >= F.col("lo")) & (F.col("u") < F.col("hi")))
            .select("src", "walk", F.col("dst").alias("pos"))
            .localCheckpoint(eager=True)
        )
        moved = walkers.count()
        if moved == 0:
            break
        steps += moved
        visits.append(walkers.groupBy("src", "pos").count())
    allv = visits[0]
    for v in visits[1:]:
        allv = allv.unionByName(v)
    counts = allv.groupBy("src", "pos").agg(F.sum("count").alias("c"))
    by_src = Window.partitionBy("src")
    top = (
        counts.withColumn("score", F.col("c") / F.sum("c").over(by_src))
        .filter(F.col("pos") != F.col("src"))
        .withColumn("rank", F.row_number().over(by_src.orderBy(F.desc("score"), "pos")))
        .filter(F.col("rank") <= k)
        .select("src", F.col("pos").alias("dst"), "score", "rank")
        .localCheckpoint(eager=True)
    )
    return top, steps


def graphx_iterations(alpha: float, tail: float = 1e-3) -> int:
    """Power iterations after which the mass still to move, (1 - alpha) ** n, is below `tail`:
    the budget that matches the walks' (a walk survives n steps with that probability)."""
    return int(np.ceil(np.log(tail) / np.log(1.0 - alpha)))


def _parse_graphx_vector(text: str, b: int) -> np.ndarray:
    """One ml.linalg Vector's toString: sparse `(size,[i,...],[x,...])` or dense `[x,...]`."""
    out = np.zeros(b)
    if text.startswith("("):
        _, idx, val = text[1:-1].split(",[", 2)
        if idx != "]":
            out[np.array(idx[:-1].split(","), int)] = np.array(val[:-1].split(","), float)
    else:
        out[:] = np.array(text[1:-1].split(","), float)
    return out


def graphx_ppr(spark, edges: pa.Table, sources, alpha: float, num_iter: int, k: int, work):
    """GraphX `PageRank.runParallelPersonalizedPageRank` over graph_edges, reached through
    py4j: the graph loaded by `GraphLoader.edgeListFile` (src dst per line, unweighted: GraphX
    splits a node's rank evenly over its out-edges), `num_iter` iterations at reset probability
    `alpha`, one vector of len(sources) per vertex. Timed: load, iterations and the vertices
    written as text (the materialisation); not timed: writing the edge list, parsing the output.
    Returns (top-k estimates without the source, seconds) or raises the JVM's error."""
    import glob
    from pathlib import Path

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    edge_file, out_dir = work / "graphx_edges.txt", work / "graphx_ranks"
    np.savetxt(
        edge_file,
        np.column_stack([edges.column(c).to_numpy() for c in ("src", "dst")]),
        fmt="%d",
    )
    sc = spark.sparkContext
    jvm, gw = sc._jvm, sc._gateway
    srcs = [int(s) for s in sources]
    arr = gw.new_array(gw.jvm.long, len(srcs))
    for i, s in enumerate(srcs):
        arr[i] = s
    level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
    tag = jvm.scala.reflect.ClassTag.Int()
    t0 = time.perf_counter()
    graph = jvm.org.apache.spark.graphx.GraphLoader.edgeListFile(
        sc._jsc.sc(), str(edge_file), False, sc.defaultParallelism, level, level
    )
    ranks = jvm.org.apache.spark.graphx.lib.PageRank.runParallelPersonalizedPageRank(
        graph, num_iter, alpha, arr, tag, tag
    )
    ranks.vertices().saveAsTextFile(str(out_dir))
    seconds = time.perf_counter() - t0
    scores: dict[int, np.ndarray] = {}
    for part in glob.glob(str(out_dir / "part-*")):
        for line in Path(part).read_text().splitlines():
            vid, vec = line.strip()[1:-1].split(",", 1)  # (vid,vector)
            scores[int(vid)] = _parse_graphx_vector(vec, len(srcs))
    ids = np.array(sorted(scores))
    mat = np.stack([scores[v] for v in ids]) if len(ids) else np.zeros((0, len(srcs)))
    est: dict[int, dict[int, float]] = {}
    for j, s in enumerate(srcs):
        col = np.where(ids == s, -1.0, mat[:, j])
        order = np.lexsort((ids, -col))[:k]
        est[s] = {int(ids[o]): float(col[o]) for o in order if col[o] > 0}
    return est, seconds


def accuracy(est: dict[int, dict[int, float]], exact: np.ndarray, sample, k: int) -> dict:
    """Mean L1 over the union of the estimate's and the exact top-k (source excluded; missing
    entries count 0) and mean top-10 overlap on sources with >= 10 reachable nodes, over the
    sources of `sample` (rows of `exact` are the accuracy sample, in order)."""
    l1s, overlaps = [], []
    for i, s in enumerate(np.asarray(sample)[: exact.shape[0]]):
        s = int(s)
        ex = exact[i].copy()
        ex[s] = -1.0
        order = np.lexsort((np.arange(ex.shape[0]), -ex))
        top = [int(v) for v in order[:k] if ex[v] > 1e-12]
        mine = est.get(s, {})
        keys = set(top) | set(mine)
        l1s.append(sum(abs(mine.get(v, 0.0) - max(ex[v], 0.0)) for v in keys))
        if (ex > 1e-12).sum() >= 10:
            best = sorted(mine, key=lambda v: (-mine[v], v))[:10]
            overlaps.append(len(set(best) & set(top[:10])) / 10)
    return {
        "l1": float(np.mean(l1s)) if l1s else float("nan"),
        "top10_overlap": float(np.mean(overlaps)) if overlaps else float("nan"),
        "accuracy_sources": len(l1s),
    }
