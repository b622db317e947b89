"""Rankings from a fitted model: features scored in `mapInArrow` tasks (the model text
broadcast once), then ordered per user on Spark. Nothing per user runs on the driver; a task
holds one Arrow batch of features at a time."""

from __future__ import annotations

from collections.abc import Sequence

#: What rank_by_score needs carried through scoring, besides the source scores.
CANDIDATE_COLUMNS = ("fused_rank", "fused_score")


def score_pairs(features, model_text: str, names: Sequence[str], keep: Sequence[str] = ()):
    """features: DataFrame[user_id, item_id, *names, *keep] -> DataFrame[user_id, item_id,
    *keep, score] (`keep`: double columns carried through, e.g. the candidate's own)."""
    from pyspark.sql import functions as F

    from udfs.ranker_score import score_batches

    spark = features.sparkSession
    text = spark.sparkContext.broadcast(model_text)
    cols = list(names)
    for n in cols:  # a feature the model knows but this run lacks (a source switched off)
        if n not in features.columns:
            features = features.withColumn(n, F.lit(None).cast("double"))
    extra = [c for c in keep if c not in cols]
    schema = ", ".join(["user_id string", "item_id string", *(f"{c} double" for c in keep)])
    return features.select("user_id", "item_id", *cols, *extra).mapInArrow(
        lambda batches: score_batches(batches, text.value, cols, list(keep)),
        f"{schema}, score double",
    )


def rank_by_score(scored, score_cols: Sequence[str]):
    """scored: score_pairs' output keeping fused_rank, fused_score and `score_cols` -> per
    user, 1 = the highest learned score (ties: the better candidate rank): rankings rows with
    the candidate's fused score and per-source scores beside. The candidates' own columns
    come through the features, so no join back to the candidates table is needed."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user_id").orderBy(F.col("score").desc(), F.col("fused_rank"))
    return scored.withColumn("rank", F.row_number().over(w).cast("int")).select(
        "user_id",
        "item_id",
        "rank",
        "score",
        F.col("fused_score").alias("candidate_score"),
        *score_cols,
    )
