"""Distributed Monte-Carlo PPR: walkers and the graph stay DataFrames, steps are joins.

For graphs that do not fit in executor memory (the broadcast strategy's limit).  Nothing of
the graph is collected to the driver and no Python UDF runs on the hot path: walks are Spark
SQL joins and expressions.  The only Python is a ``mapInArrow`` that builds the alias rows
once per graph (numpy Vose from :mod:`udfs.alias_table`, distributed by ``src``).

Walk model (the same as :mod:`udfs.walk_batch`, the broadcast kernel)
-------------------------------------------------------------------
Each source starts ``walks_per_node`` walks.  At each step a live walker ends with
probability ``alpha`` (the coin: its end point counts), otherwise a walker at a dangling node
ends (no end point), otherwise it moves to a neighbour drawn with probability ``prob``.  A walk
is cut after ``max_steps`` moves (its end point counts where it was cut).  Estimators:
``visits``: visits(s, v) / total visits(s), the start included; ``endpoint``: coin-ended walks
of s at v / coin-ended walks of s.  Both converge to ``networkx.pagerank(G, alpha=1 - alpha,
personalization={s: 1})`` (dangling mass back to the source; renewal argument, see
:mod:`udfs.walk_batch`).  Top ``top_k`` per source, the source itself excluded, ranked by score
descending then dst ascending.

Joins per run (``stats["joins"]`` counts the walk joins issued)
-----------------------------------------------------------------
Prepare: one shuffle by src (alias build), two joins for the next-hop degrees, one
repartition by ``(node, col)``.  ``steps``: one per step (~log(walks) / -log(1 - alpha)),
+1 per salted step.  ``doubling``: 1 + levels (~log2 of the longest walk) + stitches (usually
1).  Output: one shuffle by src and a numpy count per task (top-k).

Trade-off: bounded memory (nothing of the graph on one task) for one Spark job per round; it
is not meant to beat the broadcast strategy, only to run where that one cannot
(benchmarks/RESULTS.md has the measured comparison with broadcast, a naive Spark walk and
per-source networkx).

Modules: :mod:`.cells` (randomness, join context, hub salting), :mod:`.alias` (next hop),
:mod:`.steps` and :mod:`.doubling` (the two walk methods), :mod:`.topk`.
"""

from __future__ import annotations

import time
from typing import Any

from pipelines.config import PprConfig, check_section
from pipelines.ppr.distributed.alias import prepare_graph
from pipelines.ppr.distributed.cells import WalkContext, index_bits
from pipelines.ppr.distributed.doubling import walk_doubling
from pipelines.ppr.distributed.steps import walk_steps
from pipelines.ppr.distributed.topk import top_k

METHODS = ("steps", "doubling")

__all__ = ["METHODS", "index_bits", "ppr_distributed"]


def _check(cfg: PprConfig, salt_threshold: int, salts: int, method: str) -> None:
    check_section(cfg, "ppr")
    if salt_threshold < 1 or salts < 1:
        raise ValueError(f"salt_threshold and salts must be >= 1, got {salt_threshold}, {salts}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def ppr_distributed(
    spark,
    edges,
    sources,
    cfg: PprConfig,
    seed: int,
    *,
    salt_threshold: int = 10_000,
    salts: int = 16,
    method: str = "steps",
):
    """Top-``cfg.top_k`` Monte-Carlo PPR per source with Spark joins (module doc).

    edges: DataFrame with the graph_edges columns (src, dst, prob are used); sources:
    DataFrame[src].  method: ``steps`` (one join per step), ``doubling`` (segments,
    O(log walk length) joins; module doc).  Returns (DataFrame[src int, dst int, score
    double, rank int], already materialised, in ``spark.sql.shuffle.partitions`` partitions
    by hash of src, each sorted by (src, rank); stats: walks, steps (moves), joins, rounds,
    salting, seconds, ...).
    """
    from pyspark.sql import functions as F

    _check(cfg, salt_threshold, salts, method)
    t_start = time.perf_counter()
    seed = int(seed) & 0x7FFF_FFFF_FFFF_FFFF
    parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
    b = index_bits(cfg.walks_per_node, cfg.max_steps)
    alias, deg, rows = prepare_graph(edges, parts)
    srcs = sources.select(F.col("src").cast("int").alias("src")).distinct()
    srcs = srcs.localCheckpoint(eager=True)
    n_src = srcs.count()
    n_walks = n_src * int(cfg.walks_per_node)
    t_prep = time.perf_counter()
    ctx = WalkContext(cfg, seed, salt_threshold, salts, parts)
    st: dict[str, Any] = {}
    if method == "steps":
        pairs = walk_steps(spark, ctx, alias, deg, srcs, cfg, st)
    else:
        pairs = walk_doubling(spark, ctx, alias, deg, rows, srcs, n_walks, cfg, b, st)
    t_walk = time.perf_counter()
    out = top_k(pairs, int(cfg.top_k), parts).localCheckpoint(eager=True)
    t_end = time.perf_counter()
    walk_s = max(t_walk - t_prep, 1e-9)
    steps = int(st.pop("steps", 0))
    return out, {
        "strategy": "distributed",
        "method": method,
        "estimator": cfg.estimator,
        "sources": n_src,
        "walks": n_walks,
        "steps": steps,
        "index_bits": b,
        "joins": ctx.joins,
        "salted_joins": ctx.salted_joins,
        "salted_nodes": sorted(ctx.salted_nodes)[:100],
        "n_salted_nodes": len(ctx.salted_nodes),
        "hot_per_step": ctx.hot_seen,
        "salt_threshold": salt_threshold,
        "salts": salts,
        "prepare_seconds": round(t_prep - t_start, 3),
        "walk_seconds": round(walk_s, 3),
        "topk_seconds": round(t_end - t_walk, 3),
        "seconds": round(t_end - t_start, 3),
        **st,
        "steps_per_second": round(steps / walk_s, 1),
    }
