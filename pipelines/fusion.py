"""Fuse per-source candidate lists into one ranked list per user."""

from __future__ import annotations


def fuse_sources(
    per_source: dict, weights: dict[str, float], method: str, rrf_k: float, top_n: int
):
    """per_source: {name: DataFrame[user_idx, item_idx, score]} -> DataFrame with
    user_idx, item_idx, score (fused), rank, sources (array), score_<name> per source.

    weighted: Σ_s w_s · score_s / max_u(score_s)  (each source max-normalised per user)
    rrf:      Σ_s w_s / (rrf_k + rank_s)          (reciprocal-rank fusion)
    A source absent for an item contributes nothing; its score column is null.
    """
    from functools import reduce

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parts = []
    for name, df in per_source.items():
        w_user = Window.partitionBy("user_idx")
        w_rank = w_user.orderBy(F.col("score").desc(), F.col("item_idx").asc())
        df = df.withColumn("_rank", F.row_number().over(w_rank))
        if method == "rrf":
            contrib = F.lit(weights.get(name, 1.0)) / (F.lit(rrf_k) + F.col("_rank"))
        else:
            top = F.max("score").over(w_user)
            contrib = F.lit(weights.get(name, 1.0)) * F.when(
                top > 0, F.col("score") / top
            ).otherwise(0.0)
        parts.append(
            df.select(
                "user_idx",
                "item_idx",
                F.col("score").alias(f"score_{name}"),
                contrib.alias(f"_c_{name}"),
            )
        )
    joined = reduce(lambda a, b: a.join(b, ["user_idx", "item_idx"], "full_outer"), parts)
    names = list(per_source)
    fused = reduce(lambda a, b: a + b, [F.coalesce(F.col(f"_c_{n}"), F.lit(0.0)) for n in names])
    sources = F.filter(
        F.array(*[F.when(F.col(f"score_{n}").isNotNull(), F.lit(n)) for n in names]),
        lambda x: x.isNotNull(),
    )
    w = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx").asc())
    return (
        joined.withColumn("score", fused.cast("double"))
        .withColumn("sources", sources)
        .withColumn("rank", F.row_number().over(w).cast("int"))
        .filter(F.col("rank") <= top_n)
        .select("user_idx", "item_idx", "rank", "score", "sources", *[f"score_{n}" for n in names])
    )
