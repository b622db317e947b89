"""popular: the most interacted-with train items (optionally in a recent window), unseen first.

Also the fallback that every user gets, so cold users always have candidates.
"""

from __future__ import annotations

from pipelines.sources.base import SourceInputs, top_per_user


def popular_items(train, window_days: float):
    """DataFrame[item_idx, score]: train event counts, within the last window_days if > 0."""
    from pyspark.sql import functions as F

    if window_days > 0:
        latest = train.agg(F.max("ts")).first()[0]
        if latest is not None:
            cut = F.lit(latest) - F.expr(f"make_interval(0,0,0,0,0,0,{window_days * 86400.0})")
            train = train.filter(F.col("ts") >= cut)
    return train.groupBy("item_idx").agg(F.count(F.lit(1)).cast("double").alias("score"))


def popular_source(ctx, inputs: SourceInputs):
    from pyspark.sql import functions as F

    k = ctx.config.candidates.per_source
    pop = popular_items(inputs.train, ctx.config.popular.window_days)
    # A user who has seen s of the most popular items needs the top k + s: cross join only
    # that prefix, bounded by the largest overlap of any user with it.
    prefix_len = k
    if inputs.seen is not None:
        ranked = pop.orderBy(F.col("score").desc(), "item_idx")
        max_seen = inputs.seen.groupBy("user_idx").count().agg(F.max("count")).first()[0] or 0
        head = ranked.limit(k + max_seen)
        overlap = (
            inputs.seen.join(F.broadcast(head.select("item_idx")), "item_idx")
            .groupBy("user_idx")
            .count()
            .agg(F.max("count"))
            .first()[0]
            or 0
        )
        prefix_len = k + overlap
    head = pop.orderBy(F.col("score").desc(), "item_idx").limit(prefix_len)
    scored = inputs.users.crossJoin(F.broadcast(head))
    return top_per_user(scored, k, inputs.seen)
