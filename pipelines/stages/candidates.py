"""candidates: per-user union of candidate sources, fused and ranked -> candidates, rankings.

`rankings` is the fused order, so a run without LLM stages is complete; the `rank` stage
replaces it when LLM scores exist.
"""

from __future__ import annotations

from pipelines.errors import ConfigError
from pipelines.stage import Stage, StageContext


def build_candidates(ctx: StageContext):
    """-> candidates Spark DataFrame keyed by original string ids, one score column per source."""
    from pyspark.sql import functions as F

    from pipelines.fusion import fuse_sources
    from pipelines.sources import SOURCES, SourceInputs

    cfg = ctx.config.candidates
    check_sources(cfg.sources)
    events = ctx.read_spark("events")
    train = ctx.read_spark("train")
    items = ctx.read_spark("items").select("item_idx", "item_id")
    # Every known user gets candidates, including users seen only in the holdout.
    users_ids = events.select("user_idx", "user_id").distinct()
    users = users_ids.select("user_idx")
    seen = train.select("user_idx", "item_idx").distinct() if cfg.exclude_seen else None
    inputs = SourceInputs(
        train=train, users=users, seen=seen, n_items=ctx.manifest("items")["rows"]
    )
    names = list(dict.fromkeys([*cfg.sources, "popular"]))  # popular: always-on fallback
    # Each source is read once, by the fusion's single union: nothing to cache.
    per_source = {name: SOURCES[name](ctx, inputs) for name in names}
    parts = ctx.config.spark.shuffle_partitions
    fused = fuse_sources(per_source, cfg.weights, cfg.fusion, cfg.rrf_k, cfg.top_n, parts)
    # fused is hash-partitioned by user_idx: the id join keeps that, and the table is written
    # from it sorted per partition (no second shuffle of every row by user_id).
    named = (
        fused.join(F.broadcast(items), "item_idx")
        .join(users_ids, "user_idx")
        .drop("user_idx", "item_idx")
    )
    score_cols = [f"score_{n}" for n in names]
    candidates = named.select("user_id", "item_id", "rank", "score", "sources", *score_cols)
    return candidates.sortWithinPartitions("user_id", "rank")


def check_sources(names: list[str]) -> None:
    from pipelines.sources import SOURCES

    unknown = [s for s in names if s not in SOURCES]
    if unknown:
        raise ConfigError(
            f"unknown candidate source(s) {unknown}",
            hint=f"candidates.sources from: {sorted(SOURCES)}",
        )


def source_tables(cfg) -> tuple[str, ...]:
    """The run tables the enabled sources read (Stage.config_inputs of this stage)."""
    from pipelines.sources import SOURCE_TABLES

    check_sources(cfg.candidates.sources)
    return tuple(t for s in cfg.candidates.sources for t in SOURCE_TABLES[s])


def run(ctx: StageContext) -> None:
    ctx.write("candidates", build_candidates(ctx), extra={"sources": ctx.config.candidates.sources})
    # Read back from its committed files: cheaper than caching the table (users x top_n rows,
    # which spilled and dominated the stage at 5M events).
    candidates = ctx.read_spark("candidates")
    score_cols = [c for c in candidates.columns if c.startswith("score_")]
    ctx.write(
        "rankings",
        candidates.select("user_id", "item_id", "rank", "score", *score_cols),
        extra={"order": "fused candidate score"},
    )


STAGE = Stage(
    name="candidates",
    fn=run,
    inputs=("events", "train", "items"),
    config_inputs=source_tables,
    outputs=("candidates", "rankings"),
    config_keys=("candidates", "popular", "run.seed"),
    description="union of candidate sources per user, fused score and rank",
)
