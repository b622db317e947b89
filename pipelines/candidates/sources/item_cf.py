"""item_cf: Σ_i w_i · sim(i, j) over item_neighbors, w the recency weights of the user's last
`history` items (as in `ppr`; settings `candidates.item_cf`)."""

from __future__ import annotations

from pipelines.candidates.inputs import SourceInputs


def item_cf_source(inputs: SourceInputs, tables: dict, settings):
    from pipelines.candidates.inputs import top_per_user
    from pipelines.candidates.recent import recent_item_weights, weighted_item_sum

    weights = recent_item_weights(inputs.train, settings.history, settings.decay)
    table = tables["item_neighbors"]
    scored = weighted_item_sum(weights, table, "item_idx", "neighbor_idx", "sim")
    return top_per_user(scored, inputs.per_source, inputs.seen)
