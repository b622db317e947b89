"""Shared by the history-based sources: recency weights and weighted sums over item lists."""

from __future__ import annotations


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
