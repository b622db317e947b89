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

    item_vectors: DataFrame[item_idx, vec array]; every vector has the same length. Spark lists
    each user's last `history` train items newest first (ties in time: item_id descending); the
    sums run in `mapInArrow` tasks (udfs/text_vectors.weighted_unit_sums) over the item matrix,
    broadcast once (items × d float64): no per-user rows of vectors are shuffled.
    """
    import numpy as np
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("user_idx").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    lists = (
        # row_number <= history lets Spark cut each user's rows before the window's shuffle.
        train.withColumn("_r", F.row_number().over(order))
        .filter(F.col("_r") <= history)
        .groupBy("user_idx")
        .agg(F.array_sort(F.collect_list(F.struct("_r", "item_idx"))).alias("_xs"))
        .select("user_idx", F.col("_xs.item_idx").alias("items"))
    )
    table = item_vectors.select("item_idx", "vec").toArrow()
    ids = table.column("item_idx").to_numpy(zero_copy_only=False).astype(np.int64)
    vecs = table.column("vec").combine_chunks()
    d = len(vecs[0]) if len(vecs) else 0
    n = int(ids.max()) + 1 if len(ids) else 0
    matrix, has_vec = np.zeros((n, d)), np.zeros(n, dtype=bool)
    matrix[ids] = vecs.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), d)
    has_vec[ids] = True
    shared = train.sparkSession.sparkContext.broadcast((matrix, has_vec))
    return lists.mapInArrow(
        lambda batches: _recent_mean_batches(batches, *shared.value, decay),
        "user_idx int, vec array<double>",
    )


def _recent_mean_batches(batches, matrix, has_vec, decay: float):
    """Arrow batches of (user_idx, items newest first) -> (user_idx, vec) of users with a vector."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from udfs.text_vectors import weighted_unit_sums

    d = matrix.shape[1]
    for rb in batches:
        lists = rb.column(1)
        offsets = lists.offsets.to_numpy().astype(np.int64)
        items = pc.fill_null(lists.values, -1).to_numpy(zero_copy_only=False)
        items = items[offsets[0] : offsets[-1]].astype(np.int64)
        # An item without a vector (or past the matrix) is left out, as an inner join would.
        known = (items >= 0) & (items < len(matrix))
        known[known] = has_vec[items[known]]
        rows = np.where(known, items, -1)
        counts = np.diff(offsets)
        position = np.arange(len(items)) - np.repeat(offsets[:-1] - offsets[0], counts)
        vecs = weighted_unit_sums(offsets, rows, decay**position, matrix)
        kept = vecs.any(axis=1)  # a user none of whose items has a vector gets no vector
        users = rb.column(0).to_numpy(zero_copy_only=False)[kept]
        out = pa.array(np.arange(0, (len(users) + 1) * d, d, dtype=np.int32))
        yield pa.RecordBatch.from_arrays(
            [pa.array(users, pa.int32()), pa.ListArray.from_arrays(out, vecs[kept].ravel())],
            names=["user_idx", "vec"],
        )


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
