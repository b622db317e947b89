"""Recency weights of a user's last items, and weighted sums of item-to-item tables over them.

Shared by the history-based sources (transition, ppr, item_cf, user_cf): a user's last
`history` train events get weight decay**p (p = 0 the newest; ties in ts broken by item_id,
then value), an item that occurs several times gets the sum, normalised to 1 per user.
Sums over shuffled rows are exact (pipelines/exact_sum.py), so they do not depend on the
order the rows arrive in.
"""

from __future__ import annotations


def recent_item_weights(train, history: int, decay: float):
    """DataFrame[user_idx, item_idx, w]: normalised recency weights of each user's last items."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from pipelines.exact_sum import exact_sum

    w = Window.partitionBy("user_idx").orderBy(
        F.col("ts").desc(), F.col("item_id").desc(), F.col("value").desc_nulls_last()
    )
    recent = (
        train.withColumn("_p", F.row_number().over(w) - 1)
        .filter(F.col("_p") < history)
        .withColumn("_w", F.pow(F.lit(float(decay)), F.col("_p")))
        .groupBy("user_idx", "item_idx")
        .agg(exact_sum("_w").alias("_w"))
    )
    total = exact_sum("_w", over=Window.partitionBy("user_idx"))
    return recent.select("user_idx", "item_idx", (F.col("_w") / total).alias("w"))
