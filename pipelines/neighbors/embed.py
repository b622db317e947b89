"""User vectors for user_neighbors, unit length so that inner product = cosine.

- ``als``: the user factors of implicit ALS (Spark MLlib) fitted on event counts.
- ``recent_mean``: the recency-weighted mean Σ_p decay**p · v(i_p) of the ALS item factors of
  the user's last ``recent_history`` train events (p = 0 is the newest). It follows a user's
  current interests rather than their whole history, and can be recomputed for a user whose
  history changed without refitting.
Users without train events get no vector (and so no neighbors). `recent_mean` is the default
because user_cf alone scored better with it on the Toys validation split (benchmarks/RESULTS.md,
"Candidates (issue 4)").
"""

from __future__ import annotations


def fit_als(train, cfg, seed: int):
    """(userFactors, itemFactors) DataFrames [id int, features array<float>]."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    counts = train.groupBy("user_idx", "item_idx").agg(F.count(F.lit(1)).cast("float").alias("r"))
    als = ALS(
        rank=cfg.als_rank,
        maxIter=cfg.als_iterations,
        regParam=cfg.als_reg,
        alpha=cfg.als_alpha,
        implicitPrefs=True,
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="r",
        seed=seed,
        numUserBlocks=4,  # fixed blocks: the same seed gives the same factors on any cluster
        numItemBlocks=4,
    )
    model = als.fit(counts)
    return model.userFactors, model.itemFactors


def unit_rows(df, col: str = "vec"):
    """Scale the array column to unit L2 norm (rows of norm 0 are dropped)."""
    from pyspark.sql import functions as F

    norm = F.sqrt(F.aggregate(col, F.lit(0.0), lambda a, x: a + x * x))
    return (
        df.withColumn("_n", norm)
        .filter(F.col("_n") > 0)
        .withColumn(col, F.transform(col, lambda x: x / F.col("_n")))
        .drop("_n")
    )


def recent_mean_vectors(train, item_vectors, history: int, decay: float):
    """DataFrame[user_idx, vec array<double>] = Σ_p decay**p · item_vectors(i_p), unit length.

    item_vectors: DataFrame[item_idx, vec array]; every vector has the same length.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("user_idx").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    recent = (
        train.withColumn("_p", F.row_number().over(order) - 1)
        .filter(F.col("_p") < history)
        .select("user_idx", "item_idx", F.pow(F.lit(float(decay)), F.col("_p")).alias("w"))
    )
    dim = len(item_vectors.select("vec").first()[0])
    zero = F.array_repeat(F.lit(0.0), dim)
    summed = (
        recent.join(item_vectors, "item_idx")
        .groupBy("user_idx")
        .agg(F.collect_list(F.struct("w", "vec")).alias("_xs"))
        .select(
            "user_idx",
            F.aggregate(
                "_xs",
                zero,
                lambda acc, x: F.zip_with(acc, x["vec"], lambda a, b: a + x["w"] * b),
            ).alias("vec"),
        )
    )
    return unit_rows(summed)


def user_vectors(train, cfg, seed: int):
    """DataFrame[user_idx, vec array<double>] by `cfg.user_embedding`, unit length."""
    from pyspark.sql import functions as F

    users, items = fit_als(train, cfg, seed)
    if cfg.user_embedding == "als":
        vecs = users.select(
            F.col("id").alias("user_idx"), F.col("features").cast("array<double>").alias("vec")
        )
        return unit_rows(vecs)
    item_vecs = items.select(
        F.col("id").alias("item_idx"), F.col("features").cast("array<double>").alias("vec")
    )
    return recent_mean_vectors(train, item_vecs, cfg.recent_history, cfg.recent_decay)
