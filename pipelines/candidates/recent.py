"""Recency weights of a user's last items, and weighted sums of item-to-item tables over them.

Shared by the history-based sources (transition, ppr, item_cf, user_cf): a user's last
`history` train events get weight decay**p (p = 0 the newest; ties in ts broken by item_id,
then value), an item that occurs several times gets the sum, normalised to 1 per user.
"""

from __future__ import annotations


def recent_item_weights(train, history: int, decay: float):
    """DataFrame[user_idx, item_idx, w]: normalised recency weights of each user's last items."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user_idx").orderBy(
        F.col("ts").desc(), F.col("item_id").desc(), F.col("value").desc_nulls_last()
    )
    recent = (
        train.withColumn("_p", F.row_number().over(w) - 1)
        .filter(F.col("_p") < history)
        .withColumn("_w", F.pow(F.lit(float(decay)), F.col("_p")))
        .groupBy("user_idx", "item_idx")
        .agg(F.sum("_w").alias("_w"))
    )
    total = F.sum("_w").over(Window.partitionBy("user_idx"))
    return recent.select("user_idx", "item_idx", (F.col("_w") / total).alias("w"))


def weighted_item_sum(weights, table, src: str, dst: str, score: str):
    """DataFrame[user_idx, item_idx, score] = Σ_i w(u, i) · table(i -> j).

    weights: DataFrame[user_idx, item_idx, w]; table: DataFrame with columns src, dst, score.
    """
    from pyspark.sql import functions as F

    rows = table.select(
        F.col(src).alias("item_idx"), F.col(dst).alias("_dst"), F.col(score).alias("_s")
    )
    return (
        weights.join(rows, "item_idx")
        .groupBy("user_idx", F.col("_dst").alias("item_idx"))
        .agg(F.sum(F.col("w") * F.col("_s")).alias("score"))
    )
