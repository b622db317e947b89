"""The stage registry, in default pipeline order: the one list of WalkRank's stages.

The CLI, `jobs/`, the DAG's spec (`walkrank plan --json`) and the fit pass's plan all derive
from it. It sits above `pipelines/stages/` (each stage module declares one `STAGE`) so that
no stage imports the list it is part of."""

from __future__ import annotations

from pipelines.stage import Stage
from pipelines.stages import (
    candidates,
    evaluate,
    fit_ranker,
    graph,
    ingest,
    item_embeddings,
    llm_scores,
    neighbors,
    ppr,
    rank,
    split,
    summaries,
    summary_embeddings,
)

STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        ingest.STAGE,
        split.STAGE,
        graph.STAGE,
        ppr.STAGE,
        neighbors.STAGE,
        item_embeddings.STAGE,
        candidates.STAGE,
        fit_ranker.STAGE,
        summaries.STAGE,
        summary_embeddings.STAGE,
        llm_scores.STAGE,
        rank.STAGE,
        evaluate.STAGE,
    )
}
DEFAULT_STAGES = list(STAGES)


def select_stages(names: list[str] | None) -> list[Stage]:
    from pipelines.errors import ConfigError

    if not names:
        return [STAGES[n] for n in DEFAULT_STAGES]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}", hint=f"--stages from: {','.join(STAGES)}")
    return [STAGES[n] for n in names]
