"""user_cf: the recent items of a user's neighbors, weighted by similarity.

score(u, j) = Σ_v sim(u, v) · w_v(j), v over user_neighbors(u), w_v the recency weights of
v's last `candidates.user_cf_history` train events (decay user_cf_decay, summing to 1).
"""

from __future__ import annotations

from pipelines.sources.base import SourceInputs


def user_cf_source(ctx, inputs: SourceInputs):
    from pyspark.sql import functions as F

    from pipelines.exact_sum import exact_sum
    from pipelines.ppr.user_ppr import recent_item_weights
    from pipelines.sources.base import top_per_user

    cfg = ctx.config.candidates
    ids = ctx.read_spark("events").select("user_idx", "user_id").distinct()
    nb = (
        ctx.read_spark("user_neighbors")
        .join(ids, "user_id")
        .join(
            ids.select(F.col("user_idx").alias("v"), F.col("user_id").alias("neighbor_id")),
            "neighbor_id",
        )
        .select("user_idx", "v", "sim")
    )
    recent = recent_item_weights(inputs.train, cfg.user_cf_history, cfg.user_cf_decay).select(
        F.col("user_idx").alias("v"), "item_idx", "w"
    )
    scored = (
        nb.join(recent, "v")
        .groupBy("user_idx", "item_idx")
        .agg(exact_sum(F.col("sim") * F.col("w")).alias("score"))
        .filter(F.col("score") > 0)
    )
    return top_per_user(scored, cfg.per_source, inputs.seen)
