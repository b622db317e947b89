"""Fuse per-source candidate lists into one ranked list per user, by a shuffle of their rows.

Used when a source has no kernel form (or the tables are too large to broadcast together):
otherwise the fusion runs in the task that computes the lists (pipelines/candidates/
one_pass.py) as udfs/fuse_lists.py, the same operations in numpy, bit for bit. A change to
the fusion here is a change there.
"""

from __future__ import annotations

from schemas import score_column


def fuse_sources(
    per_source: dict,
    weights: dict[str, float],
    method: str,
    rrf_k: float,
    top_n: int,
    partitions: int | None = None,
):
    """per_source: {name: DataFrame[user_idx, item_idx, score]} -> DataFrame with
    user_idx, item_idx, score (fused), rank, sources (array), score_<name> per source.

    weighted: Σ_s w_s · score_s / max_u(score_s)  (each source max-normalised per user)
    rrf:      Σ_s w_s / (rrf_k + rank_s)          (reciprocal-rank fusion)
    A source absent for an item contributes nothing; its score column is null.
    The result is hash-partitioned by user_idx (into `partitions`, default Spark's setting).

    Scores are signed: a source may score an item below zero (a negative similarity). Under
    `weighted`, a user whose best score from a source is > 0 gets score / best from it, so a
    negative score lowers the item (down to -1 per unit weight, or further when the worst
    score is larger in magnitude than the best); a user whose best score is <= 0 gets 0 from
    that source (no positive evidence to normalise by). `rrf` uses ranks only.
    A NaN or infinite score is an error naming the source (`non_finite_check`): Spark orders
    NaN above every number, so it would otherwise rank first.
    """
    from functools import reduce

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    names = list(per_source)
    parts = []
    for name, df in per_source.items():
        df = df.withColumn("score", non_finite_check(F.col("score"), name))
        w_rank = Window.partitionBy("user_idx").orderBy(
            F.col("score").desc(), F.col("item_idx").asc()
        )
        weight = F.lit(weights.get(name, 1.0))
        if method == "rrf":
            contrib = weight / (F.lit(rrf_k) + F.row_number().over(w_rank))
        else:
            # Ordered descending, the running max is the user's max: one sort serves both.
            top = F.max("score").over(w_rank)
            contrib = weight * F.when(top > 0, F.col("score") / top).otherwise(0.0)
        scores = [
            (F.col("score") if n == name else F.lit(None).cast("double")).alias(score_column(n))
            for n in names
        ]
        contribs = [
            (contrib if n == name else F.lit(None).cast("double")).alias(f"_c_{n}") for n in names
        ]
        parts.append(df.select("user_idx", "item_idx", *scores, *contribs))
    # One union, one shuffle by user alone: it serves the aggregation by (user, item) and the
    # ranking window by user (grouping by both keys would shuffle again for the window).
    union = reduce(lambda a, b: a.unionByName(b), parts)
    by_user = (
        union.repartition(partitions, "user_idx") if partitions else union.repartition("user_idx")
    )
    joined = by_user.groupBy("user_idx", "item_idx").agg(
        *[F.max(c).alias(c) for n in names for c in (score_column(n), f"_c_{n}")]
    )
    # Summed in source order, not aggregation order: the same inputs give bit-identical scores.
    fused = reduce(lambda a, b: a + b, [F.coalesce(F.col(f"_c_{n}"), F.lit(0.0)) for n in names])
    sources = F.filter(
        F.array(*[F.when(F.col(score_column(n)).isNotNull(), F.lit(n)) for n in names]),
        lambda x: x.isNotNull(),
    )
    w = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx").asc())
    return (
        joined.withColumn("score", fused.cast("double"))
        .withColumn("sources", sources)
        .withColumn("rank", F.row_number().over(w).cast("int"))
        .filter(F.col("rank") <= top_n)
        .select("user_idx", "item_idx", "rank", "score", "sources", *map(score_column, names))
    )


def non_finite_check(score, source: str):  # -> Column
    """`score`, or a task error naming `source` where it is NaN or +-inf (checked as the rows
    stream through: no extra Spark job)."""
    from pyspark.sql import functions as F

    bad = F.isnan(score) | (F.abs(score) == F.lit(float("inf")))
    msg = (
        f"candidate source '{source}' produced a non-finite score (NaN or inf): "
        "fix the source or the table it reads"
    )
    return F.when(bad, F.raise_error(F.lit(msg))).otherwise(score)
