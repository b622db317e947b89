"""item_neighbors: activity-weighted co-occurrence cosine, a Spark DataFrame transform.

Rules (``NeighborsConfig``):

1. History. Each user's train events are ordered by ts (ties: item_id), newest first; only the
   last ``max_history`` events count, so one very active user adds at most max_history² pairs
   and the self-join stays bounded. H_u is the set of distinct items among them.
2. Weight. w_u = 1 / log2(1 + |H_u|): a pair from a user with a short history says more than
   one from a user who touched everything.
3. Similarity. With x_ui = [i in H_u], C_ij = Σ_u w_u x_ui x_uj and
   sim(i, j) = C_ij / sqrt(C_ii · C_jj) (cosine of the columns of diag(sqrt(w)) X).
4. Support. A pair needs n_ij = Σ_u x_ui x_uj >= ``min_support`` users; i == j is never kept.
5. Top. Each item keeps its ``item_k`` most similar items (sim desc, ties: smaller index).
"""

from __future__ import annotations


def capped_histories(train, max_history: int):
    """DataFrame[user_idx, item_idx, w]: distinct items of each user's last events, with w_u."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("user_idx").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    hist = (
        train.withColumn("_p", F.row_number().over(order))
        .filter(F.col("_p") <= max_history)
        .select("user_idx", "item_idx")
        .distinct()
    )
    n = F.count(F.lit(1)).over(Window.partitionBy("user_idx"))
    return hist.withColumn("w", 1.0 / F.log2(1.0 + n))


def item_neighbors(train, *, max_history: int, min_support: int, item_k: int):
    """DataFrame[item_idx, neighbor_idx, sim, rank] (the item_neighbors contract)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from pipelines.exact_sum import exact_sum

    hist = capped_histories(train, max_history).persist()
    norms = hist.groupBy("item_idx").agg(exact_sum("w").alias("c"))
    a = hist.select("user_idx", F.col("item_idx").alias("i"), "w")
    b = hist.select("user_idx", F.col("item_idx").alias("j"))
    pairs = (
        a.join(b, "user_idx")
        .filter(F.col("i") != F.col("j"))
        .groupBy("i", "j")
        .agg(exact_sum("w").alias("cij"), F.count(F.lit(1)).alias("n"))
        .filter(F.col("n") >= min_support)
    )
    ni = norms.select(F.col("item_idx").alias("i"), F.col("c").alias("ci"))
    nj = norms.select(F.col("item_idx").alias("j"), F.col("c").alias("cj"))
    sims = (
        pairs.join(ni, "i")
        .join(nj, "j")
        .select("i", "j", (F.col("cij") / F.sqrt(F.col("ci") * F.col("cj"))).alias("sim"))
    )
    w = Window.partitionBy("i").orderBy(F.col("sim").desc(), F.col("j").asc())
    return (
        sims.withColumn("rank", F.row_number().over(w).cast("int"))
        .filter(F.col("rank") <= item_k)
        .select(
            F.col("i").cast("int").alias("item_idx"),
            F.col("j").cast("int").alias("neighbor_idx"),
            F.col("sim").cast("double").alias("sim"),
            "rank",
        )
    )
