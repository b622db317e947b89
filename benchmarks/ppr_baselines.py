"""Baselines and accuracy measures for benchmarks/ppr_bench.py.

* exact PPR for many sources at once (power iteration with networkx's conventions: restart
  to the source with probability alpha, dangling mass back to the source);
* networkx.pagerank per source (the per-source exact baseline, timed);
* a naive Spark random walk: one join per step, no alias tables;
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
