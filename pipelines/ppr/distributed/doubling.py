"""The ``doubling`` walk method: precomputed segments, O(log walk length) joins.

``S_k(v, i)`` is the walk
from ``v`` reading cells ``(x_t, i XOR t)`` for ``t < 2**k`` (coin included): it either ended
(coin / dangling) or stands at ``end`` after ``2**k`` moves.  ``S_0`` is one hop of every cell
(``n * 2**b`` rows, one alias join), and ``S_{k+1}(v, i) = S_k(v, i)`` followed by
``S_k(end, i XOR 2**k)`` (one self-join on ``(node, idx)``, only for the segments still
moving; ended ones are final).  Since ``t < 2**k`` has no bit ``k``, the second half reads
cells ``(x, i XOR (2**k + t))``: exactly the cells step ``2**k + t`` of the direct walk reads,
so ``S_k(s, r)`` *is* walk ``r`` of ``s``, and ``steps`` and ``doubling`` return identical
tables for the same seed (tested).  Levels stop when no segment is moving (after ~``log2(
log(n * 2**b) / -log(1 - alpha))`` levels, 6 for 5M cells at alpha 0.3) or at
``2**k > max_steps``.  Walks then stitch pieces: at offset ``T`` a piece of level ``k``
(``2**k`` divides ``T``) reads ``S_k(node, r XOR T)``; the greedy cover of ``[0, max_steps)``
by the largest built level takes one join, plus one per further piece while walkers remain
live.  Segments carry their move count and, for ``visits``, their path (array).  Work
O(n * 2**b / alpha) for the segments, whatever the number of sources, and each level
shuffles both sides of a self-join whose rows carry paths: fewer rounds for more rows per
round. It pays only where a round costs far more than its rows (slower than ``steps`` on one
machine: benchmarks/RESULTS.md); ``ppr.distributed_method=doubling`` picks it.
"""

from __future__ import annotations

from pipelines.ppr.distributed.alias import union_all, with_deg
from pipelines.ppr.distributed.cells import COIN, MOVE, TRUNC, WalkContext

#: Broadcast the moving side of a doubling / later stitch join below this many rows.
BROADCAST_ROWS = 100_000


def pieces(max_steps: int, top: int) -> list[tuple[int, int]]:
    """Greedy cover of [0, max_steps) by (level, offset) pieces, 2**level dividing offset."""
    out, off = [], 0
    while off < max_steps:
        k = top
        while k > 0 and (off % (1 << k) or off + (1 << k) > max_steps):
            k -= 1
        out.append((k, off))
        off += 1 << k
    return out


def segments(spark, ctx: WalkContext, alias, deg, rows, srcs, b: int, m: int, path: bool, st):
    """-> tables[k] = S_k of every cell (start, idx, status, end, moves[, path])."""
    from pyspark.sql import functions as F

    empty = F.array().cast("array<int>")
    nodes = (
        rows.select("node")
        .unionByName(rows.select(F.col("dst").alias("node")))
        .unionByName(srcs.select(F.col("src").alias("node")))
        .distinct()
    )
    cells = (
        with_deg(nodes, deg)
        .crossJoin(spark.range(1 << b).select(F.col("id").cast("int").alias("idx")))
        .withColumn("start", F.col("node"))
    )
    done0 = cells.filter(~ctx.moving).select(
        "start",
        "idx",
        ctx.status.alias("status"),
        F.col("node").alias("end"),
        F.lit(0).alias("moves"),
        *([empty.alias("path")] if path else []),
    )
    # Every node has exactly 2**b cells, so the level-0 hop has no hot node (<= 2**b per key).
    hop = ctx.hop(cells, ["start", "idx"], alias, [], [F.col("start"), F.col("idx")])
    moved0 = hop.select(
        "start",
        "idx",
        F.lit(MOVE).alias("status"),
        F.col("node").alias("end"),
        F.lit(1).alias("moves"),
        *([F.array(F.col("node")).alias("path")] if path else []),
    )
    t0, n_cells, n_moving, hot = ctx.materialize(done0.unionByName(moved0), "end", "status")
    is_moving = F.col("status") == MOVE
    done = [t0.filter(~is_moving)]
    moving = t0.filter(is_moving)
    tables = [t0]
    r_cols = [
        F.col("status").alias("r_status"),
        F.col("end").alias("r_end"),
        F.col("moves").alias("r_moves"),
        *([F.col("path").alias("r_path")] if path else []),
    ]
    nxt_cols = [
        "start",
        "idx",
        F.col("r_status").alias("status"),
        F.col("r_end").alias("end"),
        (F.col("moves") + F.col("r_moves")).alias("moves"),
        *([F.concat("path", "r_path").alias("path")] if path else []),
    ]
    k = 0
    while n_moving > 0 and (2 << k) <= m:
        right = tables[k].select(F.col("start").alias("end"), F.col("idx").alias("jidx"), *r_cols)
        left = moving.drop("status").withColumn("jidx", F.col("idx").bitwiseXOR(F.lit(1 << k)))
        small = n_moving < BROADCAST_ROWS
        j = ctx.join(left, right, ["end", "jidx"], hot, ["start", "idx"], small)
        tk, _, n_moving, hot = ctx.materialize(j.select(*nxt_cols), "end", "status")
        done.append(tk.filter(~is_moving))
        moving = tk.filter(is_moving)
        tables.append(union_all([*done, moving]))
        k += 1
    st.update(levels=k, cells=n_cells, segments_moving_at_top=n_moving)
    return tables


def walk_doubling(spark, ctx: WalkContext, alias, deg, rows, srcs, n_walks, cfg, b: int, st):
    """Segments by doubling, then every walk stitched from them (module doc)."""
    from pyspark.sql import functions as F

    m = int(cfg.max_steps)
    path = cfg.estimator == "visits"
    tables = segments(spark, ctx, alias, deg, rows, srcs, b, m, path, st)
    empty = F.array().cast("array<int>")
    walkers = srcs.crossJoin(
        spark.range(int(cfg.walks_per_node)).select(F.col("id").cast("int").alias("r"))
    ).select(
        "src",
        "r",
        F.col("src").alias("node"),
        F.lit(0).alias("moves"),
        *([empty.alias("path")] if path else []),
    )
    r_cols = [
        "status",
        F.col("end").alias("r_end"),
        F.col("moves").alias("r_moves"),
        *([F.col("path").alias("r_path")] if path else []),
    ]
    nxt_cols = [
        "src",
        "r",
        "status",
        F.col("r_end").alias("node"),
        (F.col("moves") + F.col("r_moves")).alias("moves"),
        *([F.concat("path", "r_path").alias("path")] if path else []),
    ]
    is_moving = F.col("status") == MOVE
    finished, live, n_live, hot, used = [], walkers, n_walks, [], 0
    for level, off in pieces(m, len(tables) - 1):
        if n_live == 0:
            break
        right = tables[level].select(
            F.col("start").alias("node"), F.col("idx").alias("jidx"), *r_cols
        )
        left = live.withColumn("jidx", F.col("r").bitwiseXOR(F.lit(off)))
        small = used > 0 and n_live < BROADCAST_ROWS
        j = ctx.join(left, right, ["node", "jidx"], hot, ["src", "r"], small)
        got, _, n_live, hot = ctx.materialize(j.select(*nxt_cols), "node", "status")
        used += 1
        finished.append(got.filter(~is_moving))
        live = got.filter(is_moving).drop("status")
    if n_live:  # still moving after max_steps moves (or max_steps == 0): cut where they stand
        finished.append(live.withColumn("status", F.lit(TRUNC)))
    cols = finished[0].columns
    walks = union_all([x.select(*cols) for x in finished])
    walks = walks.coalesce(ctx.parts).localCheckpoint(eager=True)
    st.update(stitches=used, rounds=1 + st["levels"] + used)
    st["steps"] = int(walks.agg(F.sum("moves")).first()[0] or 0)
    if path:
        visited = F.explode(F.concat(F.array(F.col("src")), F.col("path")))
        return walks.select("src", visited.alias("dst"))
    ended = F.col("status").isin(COIN, TRUNC)
    return walks.filter(ended).select("src", F.col("node").alias("dst"))
