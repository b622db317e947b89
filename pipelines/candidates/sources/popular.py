"""popular: the most interacted-with train items (optionally in a recent window), unseen first.

Also the fallback that every user gets, so cold users always have candidates.
"""

from __future__ import annotations

import numpy as np

from pipelines.candidates.broadcast_topk import RowSum
from pipelines.candidates.inputs import SourceInputs
from udfs.weighted_topk import csr_from_triples


def popular_items(train, window_days: float):
    """DataFrame[item_idx, score]: train event counts, within the last window_days if > 0."""
    from pyspark.sql import functions as F

    if window_days > 0:
        latest = train.agg(F.max("ts")).first()[0]
        if latest is not None:
            cut = F.lit(latest) - F.expr(f"make_interval(0,0,0,0,0,0,{window_days * 86400.0})")
            train = train.filter(F.col("ts") >= cut)
    return train.groupBy("item_idx").agg(F.count(F.lit(1)).cast("double").alias("score"))


def popular_head(inputs: SourceInputs, settings):
    """(head, seen_pos): the first `per_source` + (the most head items any user has seen)
    items of the popularity ranking (ties: smaller item_idx) as [(pos, item_idx, score)], and
    DataFrame[user_idx, _seen array<int>] of the head positions each user has seen (None
    without `inputs.seen`). Any user's `per_source` unseen most popular items are in the head.
    """
    from pyspark.sql import functions as F

    k = inputs.per_source
    pop = popular_items(inputs.train, settings.window_days)
    ranked = pop.orderBy(F.col("score").desc(), "item_idx")
    seen_pos = None
    max_seen = (
        0
        if inputs.seen is None
        else inputs.seen.groupBy("user_idx").count().agg(F.max("count")).first()[0] or 0
    )
    # Collected once: the head is this list cut to the length the seen items require.
    longest = ranked.limit(k + max_seen).collect()
    length = k
    if inputs.seen is not None:
        head_df = inputs.spark.createDataFrame(
            [(r["item_idx"], pos) for pos, r in enumerate(longest)], "item_idx int, pos int"
        )
        seen_pos = (
            inputs.seen.join(F.broadcast(head_df), "item_idx")
            .groupBy("user_idx")
            .agg(F.collect_list("pos").alias("_seen"))
        )
        # Only as long as the largest overlap of any user with it requires.
        length = k + (seen_pos.agg(F.max(F.size("_seen"))).first()[0] or 0)
    head = [(p, r["item_idx"], float(r["score"])) for p, r in enumerate(longest[:length])]
    return head, seen_pos


def popular_kernel(inputs: SourceInputs, tables: dict, settings) -> RowSum:
    """The head as a one-row table every user sums with weight 1 (score = count exactly):
    a user's top k of it minus their seen items is the list `popular_source` gives. Costs
    len(head) terms per user (the kernel expands the whole row)."""
    head, _ = popular_head(inputs, settings)
    items = np.array([h[1] for h in head], dtype=np.int32)
    scores = np.array([h[2] for h in head], dtype=np.float64)
    return RowSum(None, csr_from_triples(np.zeros(len(head)), items, scores, 1))


def popular_source(inputs: SourceInputs, tables: dict, settings):
    """Per user: the `per_source` most popular items the user has not seen, in popularity order
    (ties: smaller item_idx).

    Every user's list comes from one short head of the popularity ranking (`popular_head`). A
    user's row holds the head positions they have seen (a join of the small seen-and-head
    pairs), and a filter + slice over the head array picks their k, with no users x head cross
    join to anti-join and sort (which grows with users x head; benchmarks/RESULTS.md,
    scaling).
    """
    from pyspark.sql import functions as F

    k = inputs.per_source
    head, seen_pos = popular_head(inputs, settings)
    # The head travels as one row holding an array (not a literal in the plan, which may be
    # thousands of items long), broadcast to every task.
    head_row = inputs.spark.createDataFrame(
        [(head,)], "_head array<struct<pos:int,item_idx:int,score:double>>"
    )
    users = inputs.users
    kept = F.col("_head")
    if seen_pos is not None:
        # Joined before the head is attached: the shuffle then moves ids, not head arrays.
        users = users.join(seen_pos, "user_idx", "left")
        kept = F.filter(
            kept, lambda h: ~F.coalesce(F.array_contains(F.col("_seen"), h["pos"]), F.lit(False))
        )
    users = users.crossJoin(F.broadcast(head_row))
    picked = users.select("user_idx", F.explode(F.slice(kept, 1, k)).alias("_h"))
    return picked.select(
        "user_idx",
        F.col("_h.item_idx").cast("int").alias("item_idx"),
        F.col("_h.score").cast("double").alias("score"),
    )
