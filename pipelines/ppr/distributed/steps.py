"""The ``steps`` walk method: one join per step over the live walkers.

``steps`` (the default, ``ppr.distributed_method=steps``): one join per step over the live
walkers; the live set shrinks by ``1 - alpha`` per step, so the loop ends after about
``log(walks) / -log(1 - alpha)`` steps (~37 for 400k walks at alpha 0.3), bounded by
``max_steps``.  Work O(total moves) = O(|sources| * walks / alpha).
"""

from __future__ import annotations

from pipelines.config import PprConfig
from pipelines.ppr.distributed.alias import union_all, with_deg
from pipelines.ppr.distributed.cells import COIN, WalkContext


def walk_steps(spark, ctx: WalkContext, alias, deg, srcs, cfg: PprConfig, st):
    """One join per step -> DataFrame[src, dst], one row per visit or per end point.

    Each round materialises the frontier (src, r, node, deg, t, idx): walker r of src stands
    on node after t moves and reads cell (node, idx = r XOR t) next.  End points are derived
    from the frontiers afterwards (the cell's verdict is a pure expression).
    """
    from pyspark.sql import functions as F

    m = int(cfg.max_steps)
    walkers = spark.range(int(cfg.walks_per_node)).select(F.col("id").cast("int").alias("r"))
    f0 = with_deg(srcs.select("src", F.col("src").alias("node")), deg).crossJoin(walkers)
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
    every = union_all(frames)
    if cfg.estimator == "visits":
        return every.select("src", F.col("node").alias("dst"))
    ends = (ctx.status == COIN) | (F.col("t") == m)  # the coin, or cut at max_steps
    return every.filter(ends).select("src", F.col("node").alias("dst"))
