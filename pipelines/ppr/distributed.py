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

Randomness: cells
-----------------
All randomness comes from *cells* ``(node, idx)`` with ``idx`` in ``[0, 2**b)``,
``2**b >= max(walks_per_node, max_steps)``: three uniforms ``xxhash64(seed, tag, node, idx)
>>> 11 / 2**53`` (coin, alias column, alias accept), so results never depend on partitioning.
Walk ``r`` (``0 <= r < walks_per_node``) of any source reads, at step ``t``, the cell
``(node_t, r XOR t)``.  Within one walk ``t -> r XOR t`` is injective, so a walk never reads a
cell twice: every step uses fresh, independent uniforms and each walk is an *exact* sample of
the walk model (no reuse within a walk, whatever the graph's cycles).  Walks of different
sources share cells (two of them at the same node at the same step with the same ``r`` move
together from then on); that couples estimates of different sources but not a source's own
walks.  Two walks of one source ``r != r'`` share a cell only when they stand on the same node
at steps ``t != t'`` with ``r XOR t == r' XOR t'``: a short-lived coupling (the next steps use
different cells unless the bit pattern repeats), which leaves the estimate unbiased and, in
the tests, its error still shrinking like ``1 / sqrt(walks)``.

Next hop in O(1)
----------------
Alias rows ``(node, col, accept, dst, dst_deg, alias_dst, alias_deg)``, one per edge, built
by sweeping Vose per node in numpy (``mapInArrow`` over edges hash-partitioned and sorted by
``(src, dst, prob)``; a node's edges straddling two Arrow batches are carried over).  A walker
at ``node`` (carrying its out-degree ``deg``) takes ``col = floor(u1 * deg)`` and equi-joins
``(node, col)``: exactly one row, ``dst`` if ``u2 < accept`` else ``alias_dst``; the next
degree rides along, so one join per hop.  The alias table is cached hash-partitioned by
``(node, col)``, so a hop shuffles only the walkers.

Methods
-------
``steps`` (the default, ``ppr.distributed_method=steps``): one join per step over the live
walkers; the live set shrinks by ``1 - alpha`` per step, so the loop ends after about
``log(walks) / -log(1 - alpha)`` steps (~37 for 400k walks at alpha 0.3), bounded by
``max_steps``.  Work O(total moves) = O(|sources| * walks / alpha).

``doubling``: precomputed segments, O(log(walk length)) joins.  ``S_k(v, i)`` is the walk
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
shuffles both sides of a self-join whose rows carry paths.  Measured on Amazon Toys in one
run (11,876 sources, 2,000 walks each, 2 cores; benchmarks/RESULTS.md): doubling 349 s,
steps 109 s, identical tables, so fewer rounds did not pay for the extra rows here; it is kept
for clusters where a round costs far more than its rows (``ppr.distributed_method=doubling``).

Hubs
----
Every materialised walker set records (``observe`` with ``approx_top_k`` on the node each
walker joins on, in the same job as the checkpoint) the nodes with more than
``salt_threshold`` arrivals.  The next join splits: cold walkers join the partitioned alias
table (or segment table) directly; walkers at hot nodes get ``salt = xxhash64(walk id) mod
salts`` and join the hot nodes' rows replicated ``salts`` times on ``(key..., salt)``, so no
task holds a hub's whole walker set.  Salting changes no result.

Joins per run (``stats["joins"]`` counts the walk joins issued)
-----------------------------------------------------------------
Prepare: one shuffle by src (alias build), two joins for the next-hop degrees, one
repartition by ``(node, col)``.  ``steps``: one per step (~log(walks) / -log(1 - alpha)),
+1 per salted step.  ``doubling``: 1 + levels (~log2 of the longest walk) + stitches (usually
1).  Output: one aggregation + one window (top-k).
"""

from __future__ import annotations

import time
from typing import Any

from pipelines.config import PprConfig, check_section

MOVE, COIN, DANGLING, TRUNC = 0, 1, 2, 3
OUTPUT_SCHEMA = "src int, dst int, score double, rank int"
ALIAS_SCHEMA = "node int, col int, deg int, accept double, dst int, alias_dst int"
METHODS = ("steps", "doubling")
#: Candidates for hot nodes per materialised walker set (approx_top_k's k).
HOT_TRACKED = 100
#: Broadcast the moving side of a doubling / later stitch join below this many rows.
BROADCAST_ROWS = 100_000
#: Pair keys buffered per top-k task before they are sorted and merged (8 bytes each).
TOPK_KEY_BUFFER = 1 << 22
_TWO_M53 = 1.0 / float(2**53)

__all__ = ["METHODS", "OUTPUT_SCHEMA", "index_bits", "ppr_distributed"]


def index_bits(walks_per_node: int, max_steps: int) -> int:
    """b with ``2**b >= max(walks_per_node, max_steps, 2)``: the cell index space."""
    return (max(int(walks_per_node), int(max_steps), 2) - 1).bit_length()


# --------------------------------------------------------------------------- alias rows


def _alias_rows(table):
    """Alias rows of complete nodes: ``table`` holds whole rows sorted by (src, dst, prob)."""
    import numpy as np
    import pyarrow as pa

    from udfs.alias_table import build_alias_tables

    src = table.column("src").to_numpy()
    dst = table.column("dst").to_numpy().astype(np.int32)
    prob = table.column("prob").to_numpy().astype(np.float64)
    starts = np.flatnonzero(np.concatenate(([True], src[1:] != src[:-1])))
    indptr = np.append(starts, src.shape[0]).astype(np.int64)
    deg = np.diff(indptr)
    tables = build_alias_tables(indptr, prob)
    row_start = np.repeat(indptr[:-1], deg)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(src, pa.int32()),
            pa.array(np.arange(src.shape[0]) - row_start, pa.int32()),
            pa.array(np.repeat(deg, deg), pa.int32()),
            pa.array(tables.accept, pa.float64()),
            pa.array(dst, pa.int32()),
            pa.array(dst[row_start + tables.alias], pa.int32()),
        ],
        names=["node", "col", "deg", "accept", "dst", "alias_dst"],
    )


def _alias_partition(batches):
    """mapInArrow body: a node's edges may straddle batches, so the last node is carried."""
    import numpy as np
    import pyarrow as pa

    carry = None
    for rb in batches:
        t = pa.Table.from_batches([rb])
        if carry is not None:
            t = pa.concat_tables([carry, t])
        if t.num_rows == 0:
            continue
        src = t.column("src").to_numpy()
        cut = int(np.searchsorted(src, src[-1], side="left"))
        if cut:
            yield _alias_rows(t.slice(0, cut).combine_chunks())
        carry = t.slice(cut)
    if carry is not None and carry.num_rows:
        yield _alias_rows(carry.combine_chunks())


# --------------------------------------------------------------------------- per-run context


class _Ctx:
    """Settings, counters and the Column expressions of one run.

    Every expression is built once and reused by every round: building a Column costs a few
    py4j calls each, which dominated the driver time of a round when rebuilt per step.  The
    step ``t`` lives in a column, never in a literal, so the rounds also share generated code.
    """

    def __init__(self, cfg: PprConfig, seed: int, thr: int, salts: int, parts: int):
        from pyspark.sql import functions as F

        self.alpha = float(cfg.alpha)
        self.seed = seed
        self.thr, self.salts, self.parts = thr, salts, parts
        self.joins = self.salted_joins = 0
        self.salted_nodes: set[int] = set()
        self.hot_seen: list[int] = []
        node, idx, deg = F.col("node"), F.col("idx"), F.col("deg")
        coin = self.uniform(0, node, idx) < self.alpha
        # The cell's verdict: the coin first, then a dangling node ends the walk, else move.
        self.status = (
            F.when(coin, F.lit(COIN)).when(deg == 0, F.lit(DANGLING)).otherwise(F.lit(MOVE))
        )
        self.moving = self.status == MOVE
        self.col = F.least(F.floor(self.uniform(1, node, idx) * deg), deg - 1).cast("int")
        self.col = self.col.alias("col")
        self.u2 = self.uniform(2, node, idx).alias("_u2")
        keep = F.col("_u2") < F.col("accept")
        self.next = [
            F.when(keep, F.col("dst")).otherwise(F.col("alias_dst")).alias("node"),
            F.when(keep, F.col("dst_deg")).otherwise(F.col("alias_deg")).alias("deg"),
        ]
        self._metrics: dict[tuple, list] = {}

    def uniform(self, tag: int, node, idx):
        """Uniform [0, 1) of the cell (node, idx): the top 53 bits of xxhash64."""
        from pyspark.sql import functions as F

        h = F.xxhash64(F.lit(self.seed).cast("long"), F.lit(tag), node, idx)
        return F.shiftrightunsigned(h, 11).cast("double") * _TWO_M53

    def _metric_cols(self, hot_col: str, moving: str | None) -> list:
        from pyspark.sql import functions as F

        key = (hot_col, moving)
        if key not in self._metrics:
            is_moving = F.col(moving) == MOVE if moving else F.lit(True)
            top = F.call_function(
                "approx_top_k", F.when(is_moving, F.col(hot_col)), F.lit(HOT_TRACKED), F.lit(10_000)
            )
            self._metrics[key] = [
                F.count(F.lit(1)).alias("rows"),
                F.sum(F.when(is_moving, 1).otherwise(0)).alias("moving"),
                top.alias("top"),
            ]
        return self._metrics[key]

    def materialize(self, df, hot_col: str, moving: str | None = None):
        """Checkpoint ``df`` in one job -> (df, rows, moving rows, hot nodes).

        ``hot_col`` is the node the next join keys on; a node with more than ``thr`` (moving)
        rows there is hot.  approx_top_k is a frequent-items sketch: its counts are
        estimates, which is all salting needs.  coalesce: a broadcast join keeps the stream
        side's partitions, which must not pile up from round to round.
        """
        from pyspark.sql import Observation

        obs = Observation()
        out = (
            df.coalesce(self.parts)
            .observe(obs, *self._metric_cols(hot_col, moving))
            .localCheckpoint(eager=True)
        )
        got = obs.get
        hot = sorted(
            int(it["item"])
            for it in (got.get("top") or [])
            if it["item"] is not None and it["count"] > self.thr
        )
        return out, int(got["rows"] or 0), int(got["moving"] or 0), hot

    def join(self, left, right, on: list[str], hot: list[int], salt_cols: list[str], small=False):
        """Inner equi-join on ``on`` (same names on both sides, ``on[0]`` the node key).

        Rows of ``left`` at hot nodes get ``salt = xxhash64(salt_cols) mod salts`` and meet
        the hot nodes' rows of ``right`` replicated ``salts`` times; the rest joins plainly,
        so ``right`` keeps its partitioning.  The result is the same join either way.
        """
        from pyspark.sql import functions as F

        self.joins += 1
        if small:
            left = F.broadcast(left)
        if not hot or self.salts <= 1:
            return left.join(right, on)
        self.salted_joins += 1
        self.salted_nodes.update(hot)
        is_hot = F.col(on[0]).isin(hot)
        cold = left.filter(~is_hot).join(right, on)
        salt = F.pmod(F.xxhash64(*salt_cols), F.lit(self.salts)).cast("int")
        hl = left.filter(is_hot).withColumn("_salt", salt)
        hr = right.filter(is_hot).withColumn(
            "_salt", F.explode(F.sequence(F.lit(0), F.lit(self.salts - 1)))
        )
        return cold.unionByName(hl.join(hr, [*on, "_salt"]).drop("_salt"))

    def hop(self, x, carry: list[str], alias, hot, out: list):
        """Rows of ``x`` (node, deg, idx, carry...) whose cell (node, idx) says move ->
        ``out`` (over the carry columns) + node, deg of the next hop.  One join; the walker
        side is the hash-join build side, the partitioned alias table streams unshuffled."""
        m = x.filter(self.moving).select(*carry, "node", self.col, self.u2).hint("shuffle_hash")
        j = self.join(m, alias, ["node", "col"], hot, carry[:2])
        return j.select(*out, *self.next)


# --------------------------------------------------------------------------- graph


def _prepare(edges, n_parts: int):
    """-> (alias rows partitioned and sorted by (node, col), DataFrame[node, deg], raw rows)."""
    from pyspark.sql import functions as F

    e = edges.select(
        F.col("src").cast("int").alias("src"),
        F.col("dst").cast("int").alias("dst"),
        F.col("prob").cast("double").alias("prob"),
    )
    rows = (
        e.repartition(n_parts, "src")
        .sortWithinPartitions("src", "dst", "prob")
        .mapInArrow(_alias_partition, ALIAS_SCHEMA)
        .localCheckpoint(eager=True)
    )
    deg = rows.filter(F.col("col") == 0).select("node", "deg")
    d1 = deg.select(F.col("node").alias("dst"), F.col("deg").alias("dst_deg"))
    d2 = deg.select(F.col("node").alias("alias_dst"), F.col("deg").alias("alias_deg"))
    alias = (
        rows.drop("deg")
        .join(d1, "dst", "left")
        .join(d2, "alias_dst", "left")
        .select(
            "node",
            "col",
            "accept",
            "dst",
            F.coalesce("dst_deg", F.lit(0)).alias("dst_deg"),
            "alias_dst",
            F.coalesce("alias_deg", F.lit(0)).alias("alias_deg"),
        )
        .repartition(n_parts, "node", "col")
        .sortWithinPartitions("node", "col")
        .localCheckpoint(eager=True)
    )
    return alias, deg, rows


def _with_deg(df, deg):
    """df (node, ...) + deg (0 for nodes without out-edges)."""
    from pyspark.sql import functions as F

    return df.join(deg, "node", "left").withColumn("deg", F.coalesce("deg", F.lit(0)))


def _union(parts):
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


# --------------------------------------------------------------------------- steps


def _walk_steps(spark, ctx: _Ctx, alias, deg, srcs, cfg: PprConfig, st):
    """One join per step -> DataFrame[src, dst], one row per visit or per end point.

    Each round materialises the frontier (src, r, node, deg, t, idx): walker r of src stands
    on node after t moves and reads cell (node, idx = r XOR t) next.  End points are derived
    from the frontiers afterwards (the cell's verdict is a pure expression).
    """
    from pyspark.sql import functions as F

    m = int(cfg.max_steps)
    walkers = spark.range(int(cfg.walks_per_node)).select(F.col("id").cast("int").alias("r"))
    f0 = _with_deg(srcs.select("src", F.col("src").alias("node")), deg).crossJoin(walkers)
    f0 = f0.select("src", "r", "node", "deg", F.lit(0).alias("t"), F.col("r").alias("idx"))
    t1 = F.col("t") + 1
    out = [F.col("src"), F.col("r"), t1.alias("t"), F.col("r").bitwiseXOR(t1).alias("idx")]
    f, live, _, hot = ctx.materialize(f0, "node")
    frames, per_step, t = [f], [live], 0
    while live > 0 and t < m:
        ctx.hot_seen.append(len(hot))
        f, live, _, hot = ctx.materialize(ctx.hop(f, ["src", "r", "t"], alias, hot, out), "node")
        frames.append(f)
        per_step.append(live)
        t += 1
    st.update(rounds=len(frames), live_per_step=per_step, steps=sum(per_step[1:]))
    every = _union(frames)
    if cfg.estimator == "visits":
        return every.select("src", F.col("node").alias("dst"))
    ends = (ctx.status == COIN) | (F.col("t") == m)  # the coin, or cut at max_steps
    return every.filter(ends).select("src", F.col("node").alias("dst"))


# --------------------------------------------------------------------------- doubling


def _pieces(max_steps: int, top: int) -> list[tuple[int, int]]:
    """Greedy cover of [0, max_steps) by (level, offset) pieces, 2**level dividing offset."""
    out, off = [], 0
    while off < max_steps:
        k = top
        while k > 0 and (off % (1 << k) or off + (1 << k) > max_steps):
            k -= 1
        out.append((k, off))
        off += 1 << k
    return out


def _segments(spark, ctx: _Ctx, alias, deg, rows, srcs, b: int, m: int, path: bool, st):
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
        _with_deg(nodes, deg)
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
        tables.append(_union([*done, moving]))
        k += 1
    st.update(levels=k, cells=n_cells, segments_moving_at_top=n_moving)
    return tables


def _walk_doubling(spark, ctx: _Ctx, alias, deg, rows, srcs, n_walks, cfg, b: int, st):
    """Segments by doubling, then every walk stitched from them (module doc)."""
    from pyspark.sql import functions as F

    m = int(cfg.max_steps)
    path = cfg.estimator == "visits"
    tables = _segments(spark, ctx, alias, deg, rows, srcs, b, m, path, st)
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
    for level, off in _pieces(m, len(tables) - 1):
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
    walks = _union([x.select(*cols) for x in finished])
    walks = walks.coalesce(ctx.parts).localCheckpoint(eager=True)
    st.update(stitches=used, rounds=1 + st["levels"] + used)
    st["steps"] = int(walks.agg(F.sum("moves")).first()[0] or 0)
    if path:
        visited = F.explode(F.concat(F.array(F.col("src")), F.col("path")))
        return walks.select("src", visited.alias("dst"))
    ended = F.col("status").isin(COIN, TRUNC)
    return walks.filter(ended).select("src", F.col("node").alias("dst"))


# --------------------------------------------------------------------------- entry point


def _top_k_partition(batches, k: int, capacity: int):
    """mapInArrow body: every (src, dst) event of this task's sources -> their top-k rows.

    Counts pair keys in bounded memory (O(capacity + distinct pairs), not O(events)), then
    ranks with :func:`udfs.topk.top_k_by_share`; rows come out sorted by (src, rank)."""
    import pyarrow as pa

    from udfs.key_counter import KeyCounter
    from udfs.topk import pair_keys, top_k_by_share

    counter = KeyCounter(2**63, capacity, dense=False)
    for rb in batches:
        keys = pair_keys(
            rb.column(0).to_numpy(zero_copy_only=False), rb.column(1).to_numpy(zero_copy_only=False)
        )
        counter.reserve(keys.shape[0])[:] = keys
    keys, counts = counter.result()
    if keys.shape[0] == 0:
        return
    src, dst, score, rank = top_k_by_share(keys, counts, k)
    yield pa.RecordBatch.from_arrays(
        [pa.array(src), pa.array(dst), pa.array(score), pa.array(rank)],
        names=["src", "dst", "score", "rank"],
    )


def _top_k(pairs, top_k: int, parts: int):
    """(src, dst) rows, one per visit or end point -> top_k per src by count share, the src
    itself excluded; ties by dst ascending.

    One shuffle of the events by src, then numpy per task (:func:`_top_k_partition`).  The
    SQL form (groupBy(src, dst) + a window over src) shuffled twice and spent most of its
    time in a partial aggregation that merges little (a source's visits are spread over
    every partition of the walk): 65 s of a 141 s all-sources run on Amazon Toys, 44 s now."""
    from functools import partial

    body = partial(_top_k_partition, k=int(top_k), capacity=TOPK_KEY_BUFFER)
    return pairs.select("src", "dst").repartition(parts, "src").mapInArrow(body, OUTPUT_SCHEMA)


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
    alias, deg, rows = _prepare(edges, parts)
    srcs = sources.select(F.col("src").cast("int").alias("src")).distinct()
    srcs = srcs.localCheckpoint(eager=True)
    n_src = srcs.count()
    n_walks = n_src * int(cfg.walks_per_node)
    t_prep = time.perf_counter()
    ctx = _Ctx(cfg, seed, salt_threshold, salts, parts)
    st: dict[str, Any] = {}
    if method == "steps":
        pairs = _walk_steps(spark, ctx, alias, deg, srcs, cfg, st)
    else:
        pairs = _walk_doubling(spark, ctx, alias, deg, rows, srcs, n_walks, cfg, b, st)
    t_walk = time.perf_counter()
    out = _top_k(pairs, int(cfg.top_k), parts).localCheckpoint(eager=True)
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
