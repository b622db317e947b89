"""User-level PPR by linearity: PPR(Σ_i w_i e_i) = Σ_i w_i PPR(e_i).

A user's personalization vector puts recency-weighted mass on their last `history` train
items (weight decay**p for the p-th most recent event, normalised to sum 1; an item that
occurs several times gets the sum). Their PPR vector is then the same weighted sum of the
items' (top-k truncated) `item_ppr` rows — no walk per user is needed.
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


def user_ppr(item_ppr, train, *, history: int, decay: float, top_n: int, exclude_seen: bool = True):
    """DataFrame[user_idx, item_idx, score]: top_n of Σ_i w_i · item_ppr(i, ·) per user."""
    from pyspark.sql import functions as F

    from pipelines.exact_sum import exact_sum
    from pipelines.sources.base import top_per_user

    weights = recent_item_weights(train, history, decay)
    scored = (
        weights.join(item_ppr.select(F.col("src").alias("item_idx"), "dst", "score"), "item_idx")
        .groupBy("user_idx", F.col("dst").alias("item_idx"))
        .agg(exact_sum(F.col("w") * F.col("score")).alias("score"))
    )
    seen = train.select("user_idx", "item_idx").distinct() if exclude_seen else None
    return top_per_user(scored, top_n, seen)
