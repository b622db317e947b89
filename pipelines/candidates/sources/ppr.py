"""ppr: user-level PPR by linearity, PPR(Σ_i w_i e_i) = Σ_i w_i PPR(e_i).

A user's personalization vector puts recency-weighted mass on their last `history` train
items (pipelines/candidates/recent.py; settings `candidates.ppr`). Their PPR vector is then
the same weighted sum of the items' (top-k truncated) `item_ppr` rows: no walk per user.
Items without an item_ppr row (no out-edges, or not a PPR seed) add nothing.
"""

from __future__ import annotations

from pipelines.candidates.inputs import SourceInputs


def user_ppr(item_ppr, train, *, history: int, decay: float, top_n: int, seen=None):
    """DataFrame[user_idx, item_idx, score]: top_n of Σ_i w_i · item_ppr(i, ·) per user."""
    from pipelines.candidates.inputs import top_per_user
    from pipelines.candidates.recent import recent_item_weights, weighted_item_sum

    weights = recent_item_weights(train, history, decay)
    scored = weighted_item_sum(weights, item_ppr, "src", "dst", "score")
    return top_per_user(scored, top_n, seen)


def ppr_source(inputs: SourceInputs, tables: dict, settings):
    return user_ppr(
        tables["item_ppr"],
        inputs.train,
        history=settings.history,
        decay=settings.decay,
        top_n=inputs.per_source,
        seen=inputs.seen,
    )
