"""item_cf: Σ_i w_i · sim(i, j) over item_neighbors, w as in `ppr` (recency-weighted, sum 1)."""

from __future__ import annotations

from pipelines.sources.base import SourceInputs


def item_cf_source(ctx, inputs: SourceInputs):
    from pipelines.ppr.user_ppr import recent_item_weights
    from pipelines.sources.base import top_per_user
    from pipelines.sources.recent import weighted_item_sum

    cfg = ctx.config.candidates
    weights = recent_item_weights(inputs.train, cfg.item_cf_history, cfg.item_cf_decay)
    table = ctx.read_spark("item_neighbors")
    scored = weighted_item_sum(weights, table, "item_idx", "neighbor_idx", "sim")
    return top_per_user(scored, cfg.per_source, inputs.seen)
