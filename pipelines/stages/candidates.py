"""candidates: per-user union of candidate sources, fused and ranked -> candidates, rankings.

`rankings` is the fused order, so a run without LLM stages is complete; the `rank` stage
replaces it when LLM scores are used. The sources and their tables: pipelines/candidates/.
"""

from __future__ import annotations

from pipelines.candidates.registry import SOURCES, enabled, tables_read
from pipelines.stage import Stage, StageContext
from schemas import score_column


def source_tables(cfg) -> tuple[str, ...]:
    """The run tables the enabled sources read (Stage.config_inputs of this stage); with cfg
    None, those every registered source may read."""
    if cfg is None:
        return tables_read(list(SOURCES))
    return tables_read(enabled(cfg.candidates.sources))


def config_tables(cfg) -> tuple[str, ...]:
    """The sources' tables, and the holdout when the run samples its users (run.user_sample)."""
    from pipelines.user_sample import sample_inputs

    return (*source_tables(cfg), *sample_inputs(cfg))


def run(ctx: StageContext) -> None:
    from pipelines.candidates.build import build_candidates, source_inputs
    from pipelines.user_sample import sample_ids

    cfg = ctx.config.candidates
    sample = sample_ids(ctx)
    if sample is not None:
        ctx.log(
            f"candidates for a sample of users (run.user_sample = {ctx.config.run.user_sample:,})"
        )
    inputs = source_inputs(
        ctx.spark,
        ctx.read_spark("events"),
        ctx.read_spark("train"),
        ctx.manifest("items")["rows"],
        cfg,
        ctx.read_arrow,
        sample,
    )
    tables = {t: ctx.read_spark(t) for t in source_tables(ctx.config)}
    candidates, names = build_candidates(
        inputs,
        tables,
        ctx.read_spark("items"),
        cfg,
        ctx.config.spark.shuffle_partitions,
        log=ctx.log,
    )
    ctx.write("candidates", candidates, extra={"sources": names})
    ctx.write("fallback_rankings", fallback_rankings(ctx), extra={"order": "popularity"})
    # Read back from its committed files: cheaper than caching the table (users x top_n rows).
    score_cols = [score_column(n) for n in names]
    ctx.write(
        "rankings",
        ctx.read_spark("candidates").select("user_id", "item_id", "rank", "score", *score_cols),
        extra={"order": "fused candidate score", "sources": names},
    )


def fallback_rankings(ctx: StageContext):
    """The list for a user the log has never seen: the top_n most popular train items in the
    popular source's window (ties: smaller item_idx, as that source breaks them)."""
    from pyspark.sql import functions as F

    from pipelines.candidates.registry import FALLBACK
    from pipelines.candidates.sources.popular import popular_items

    cfg = ctx.config.candidates
    window = SOURCES[FALLBACK].settings_of(cfg).window_days
    top = (
        popular_items(ctx.read_spark("train"), window)
        .orderBy(F.col("score").desc(), "item_idx")
        .limit(cfg.top_n)
        .collect()
    )
    rows = [(r["item_idx"], pos + 1, float(r["score"])) for pos, r in enumerate(top)]
    ranked = ctx.spark.createDataFrame(rows, "item_idx int, rank int, score double")
    items = ctx.read_spark("items").select("item_idx", "item_id")
    return (
        ranked.join(F.broadcast(items), "item_idx")
        .select("item_id", "rank", "score")
        .orderBy("rank")
    )


STAGE = Stage(
    name="candidates",
    fn=run,
    inputs=("events", "train", "items"),
    config_inputs=config_tables,
    outputs=("candidates", "rankings", "fallback_rankings"),
    config_keys=("candidates", "run.seed", "run.user_sample", "eval.target"),
    description="union of candidate sources per user, fused score and rank",
)
