"""user_cf: the recent items of a user's neighbors, weighted by similarity.

score(u, j) = Σ_v sim(u, v) · w_v(j), v over user_neighbors(u), w_v the recency weights of
v's last `history` train events (settings `candidates.user_cf`, summing to 1).
"""

from __future__ import annotations

from pipelines.candidates.inputs import SourceInputs


def user_cf_source(inputs: SourceInputs, tables: dict, settings):
    from pyspark.sql import functions as F

    from pipelines.candidates.inputs import top_per_user
    from pipelines.candidates.recent import recent_item_weights

    ids = inputs.user_ids
    nb = (
        tables["user_neighbors"]
        .join(ids, "user_id")
        .join(
            ids.select(F.col("user_idx").alias("v"), F.col("user_id").alias("neighbor_id")),
            "neighbor_id",
        )
        .select("user_idx", "v", "sim")
    )
    recent = recent_item_weights(inputs.train, settings.history, settings.decay).select(
        F.col("user_idx").alias("v"), "item_idx", "w"
    )
    scored = (
        nb.join(recent, "v")
        .groupBy("user_idx", "item_idx")
        .agg(F.sum(F.col("sim") * F.col("w")).alias("score"))
        .filter(F.col("score") > 0)
    )
    return top_per_user(scored, inputs.per_source, inputs.seen)
