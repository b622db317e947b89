"""Spark references the candidate kernels are tested against (used by tests only): the
plain Spark join/groupBy forms of what the broadcast kernels compute."""

from __future__ import annotations

from pipelines.candidates.sources.ppr import ppr_form


def weighted_item_sum(weights, table, src: str, dst: str, score: str):
    """DataFrame[user_idx, item_idx, score] = Σ_i w(u, i) · table(i -> j).

    weights: DataFrame[user_idx, item_idx, w]; table: DataFrame with columns src, dst, score.
    """
    from pyspark.sql import functions as F

    from pipelines.exact_sum import exact_sum

    rows = table.select(
        F.col(src).alias("item_idx"), F.col(dst).alias("_dst"), F.col(score).alias("_s")
    )
    return (
        weights.join(rows, "item_idx")
        .groupBy("user_idx", F.col("_dst").alias("item_idx"))
        .agg(exact_sum(F.col("w") * F.col("_s")).alias("score"))
    )


def user_ppr(
    spark, item_ppr, train, *, n_items: int, history: int, decay: float, top_n: int, seen=None
):
    """DataFrame[user_idx, item_idx, score]: top_n of Σ_i w_i · item_ppr(i, ·) per user.

    item_ppr: pyarrow.Table[src, dst, score]."""
    from pipelines.candidates.broadcast_topk import broadcast_topk

    form = ppr_form(item_ppr, train, n_items=n_items, history=history, decay=decay)
    return broadcast_topk(spark, form.entries, seen, form.csr, top_n)
