"""neighbors: train, events -> item_neighbors, user_neighbors.

item_neighbors: activity-weighted co-occurrence cosine (pipelines/neighbors/items.py), by a
compiled kernel over the histories broadcast, or a Spark self-join past a size.
user_neighbors: user vectors (pipelines/neighbors/embed.py) and a faiss index broadcast to
executors (pipelines/neighbors/users.py), keyed by original user ids.
"""

from __future__ import annotations

from pipelines.stage import Stage, StageContext
from pipelines.user_sample import sample_inputs


def run(ctx: StageContext) -> None:
    from pyspark.sql import functions as F

    from pipelines.neighbors.embed import user_vectors
    from pipelines.neighbors.items import capped_histories, item_neighbors
    from pipelines.neighbors.users import knn_spark

    cfg = ctx.config.neighbors
    seed = cfg.seed or ctx.config.run.seed
    train = ctx.read_spark("train")
    parts = ctx.config.spark.shuffle_partitions

    hist = capped_histories(train, cfg.max_history).persist()
    items, info = item_neighbors(
        hist,
        max_history=cfg.max_history,
        min_support=cfg.min_support,
        item_k=cfg.item_k,
        strategy=cfg.item_strategy,
        broadcast_max_rows=cfg.item_broadcast_max_rows,
        partitions=parts,
    )
    ctx.log(f"item_neighbors: {info['strategy']} ({info['why']})")
    ctx.write(
        "item_neighbors",
        items.repartition(parts, "item_idx").sortWithinPartitions("item_idx", "rank"),
        extra=info,
    )
    hist.unpersist()

    from pipelines.user_sample import sample_ids

    sample = sample_ids(ctx)  # None: every user's neighbours
    queries = None if sample is None else sample.select("user_idx")
    vecs = user_vectors(train, cfg, seed).persist()
    knn, info = knn_spark(ctx.spark, vecs, cfg, seed, queries)
    ctx.log(
        f"user vectors: {cfg.user_embedding}; index {info.get('index')} over {info['users_indexed']:,} users"
    )
    # One row per user, broadcast (~40 bytes a user): the users x user_k neighbour rows are
    # not shuffled twice to be named (a sort-merge join by user, then one by neighbour).
    ids = F.broadcast(ctx.read_spark("events").select("user_idx", "user_id").distinct())
    named = (
        knn.join(ids, "user_idx")
        .join(
            ids.select(
                F.col("user_idx").alias("neighbor_idx"), F.col("user_id").alias("neighbor_id")
            ),
            "neighbor_idx",
        )
        .select("user_id", "neighbor_id", "sim", "rank")
    )
    ctx.write(
        "user_neighbors",
        named.repartition(parts, "user_id").sortWithinPartitions("user_id", "rank"),
        extra={**info, "user_embedding": cfg.user_embedding, "seed": seed},
    )
    vecs.unpersist()


STAGE = Stage(
    name="neighbors",
    fn=run,
    inputs=("train", "events"),
    # run.user_sample: user_neighbors for the sampled users (all users stay in the index).
    config_inputs=sample_inputs,
    outputs=("item_neighbors", "user_neighbors"),
    config_keys=("neighbors", "run.seed", "run.user_sample", "eval.target"),
    description="item-item co-occurrence cosine and user-user kNN (faiss) neighbor sets",
)
