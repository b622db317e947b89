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


def run(ctx: StageContext) -> None:
    from pipelines.candidates.build import build_candidates, source_inputs

    cfg = ctx.config.candidates
    inputs = source_inputs(
        ctx.spark,
        ctx.read_spark("events"),
        ctx.read_spark("train"),
        ctx.manifest("items")["rows"],
        cfg,
        ctx.read_arrow,
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
    # Read back from its committed files: cheaper than caching the table (users x top_n rows).
    score_cols = [score_column(n) for n in names]
    ctx.write(
        "rankings",
        ctx.read_spark("candidates").select("user_id", "item_id", "rank", "score", *score_cols),
        extra={"order": "fused candidate score", "sources": names},
    )


STAGE = Stage(
    name="candidates",
    fn=run,
    inputs=("events", "train", "items"),
    config_inputs=source_tables,
    outputs=("candidates", "rankings"),
    config_keys=("candidates", "run.seed"),
    description="union of candidate sources per user, fused score and rank",
)
