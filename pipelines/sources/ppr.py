"""ppr: user-level PPR by linearity over the last `candidates.ppr_history` train events.

The user's vector is Σ_i w_i · item_ppr(i, ·) with w ∝ ppr_decay**p for the p-th most recent
event (pipelines/ppr/user_ppr.py); items without an item_ppr row (no out-edges) add nothing.
"""

from __future__ import annotations

from pipelines.sources.base import SourceInputs


def ppr_source(ctx, inputs: SourceInputs):
    from pipelines.ppr.user_ppr import recent_item_weights
    from pipelines.sources.base import top_per_user
    from pipelines.sources.recent import weighted_item_sum

    cfg = ctx.config.candidates
    weights = recent_item_weights(inputs.train, cfg.ppr_history, cfg.ppr_decay)
    scored = weighted_item_sum(weights, ctx.read_spark("item_ppr"), "src", "dst", "score")
    return top_per_user(scored, cfg.per_source, inputs.seen)
