"""Rankings from a fitted model: features scored in `mapInArrow` tasks (the model text
broadcast once), then ordered per user on Spark. Nothing per user runs on the driver; a task
holds one Arrow batch of features at a time."""

from __future__ import annotations

from collections.abc import Sequence


def score_pairs(features, model_text: str, names: Sequence[str]):
    """features: DataFrame[user_id, item_id, *names] -> DataFrame[user_id, item_id, score]."""
    from pyspark.sql import functions as F

    from udfs.ranker_score import score_batches

    spark = features.sparkSession
    text = spark.sparkContext.broadcast(model_text)
    cols = list(names)
    for n in cols:  # a feature the model knows but this run lacks (a source switched off)
        if n not in features.columns:
            features = features.withColumn(n, F.lit(None).cast("double"))
    return features.select("user_id", "item_id", *cols).mapInArrow(
        lambda batches: score_batches(batches, text.value, cols),
        "user_id string, item_id string, score double",
    )


def rank_by_score(scored, candidates, score_cols: Sequence[str]):
    """Per user, 1 = the highest learned score (ties: the better candidate rank) -> rankings
    rows with the candidate's fused score and per-source scores beside."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cand = candidates.select(
        "user_id",
        "item_id",
        F.col("rank").alias("_crank"),
        F.col("score").alias("candidate_score"),
        *score_cols,
    )
    w = Window.partitionBy("user_id").orderBy(F.col("score").desc(), F.col("_crank"))
    return (
        scored.join(cand, ["user_id", "item_id"])
        .withColumn("rank", F.row_number().over(w).cast("int"))
        .select("user_id", "item_id", "rank", "score", "candidate_score", *score_cols)
    )
