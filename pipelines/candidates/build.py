"""Every enabled source's per-user list, fused into one ranked list per user (ids attached)."""

from __future__ import annotations

from typing import Any

from pipelines.candidates.inputs import SourceInputs
from pipelines.candidates.registry import SOURCES, enabled


def source_inputs(spark, events, train, n_items: int, cfg, read_arrow) -> SourceInputs:
    """The common inputs of every source: users are every user of `events` (including users
    seen only in the holdout), seen pairs those of `train` when `exclude_seen`."""
    user_ids = events.select("user_idx", "user_id").distinct()
    seen = train.select("user_idx", "item_idx").distinct() if cfg.exclude_seen else None
    return SourceInputs(
        spark=spark,
        train=train,
        users=user_ids.select("user_idx"),
        user_ids=user_ids,
        seen=seen,
        n_items=n_items,
        per_source=cfg.per_source,
        read_arrow=read_arrow,
    )


def build_candidates(inputs: SourceInputs, tables: dict[str, Any], items, cfg, partitions: int):
    """-> (candidates DataFrame keyed by string ids, one score column per source, sorted by
    (user_id, rank) within its user partitions; the source names in column order)."""
    from pyspark.sql import functions as F

    from pipelines.candidates.fusion import fuse_sources

    names = enabled(cfg.sources)
    # Each source is read once, by the fusion's single union: nothing to cache.
    per_source = {}
    for name in names:
        src = SOURCES[name]
        per_source[name] = src.load()(inputs, {t: tables[t] for t in src.reads}, src.settings(cfg))
    fused = fuse_sources(per_source, cfg.weights, cfg.fusion, cfg.rrf_k, cfg.top_n, partitions)
    # fused is hash-partitioned by user_idx: the id joins keep that, and the table is written
    # from it sorted per partition (no second shuffle of every row by user_id).
    named = (
        fused.join(F.broadcast(items.select("item_idx", "item_id")), "item_idx")
        .join(inputs.user_ids, "user_idx")
        .drop("user_idx", "item_idx")
    )
    score_cols = [f"score_{n}" for n in names]
    out = named.select("user_id", "item_id", "rank", "score", "sources", *score_cols)
    return out.sortWithinPartitions("user_id", "rank"), names
