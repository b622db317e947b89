"""item_cf: Σ_i w_i · sim(i, j) over item_neighbors, w the recency weights of the user's last
`history` items (as in `ppr`; settings `candidates.item_cf`).

Every item the user's neighbour rows reach is a candidate, whatever the sign of its sum.
The sum runs in mapInArrow tasks over item_neighbors broadcast as CSR
(pipelines/candidates/broadcast_topk.py). The broadcast is ≈ 16 · nnz bytes, nnz = n_items ·
neighbors.item_k: ~0.8 GB at 1M items and item_k 50, on the driver and every executor; a
few times that is where it stops being sensible and the table should be partitioned by
item_idx and joined instead.
"""

from __future__ import annotations

from pipelines.candidates.broadcast_topk import RowSum
from pipelines.candidates.inputs import SourceInputs


def item_cf_kernel(inputs: SourceInputs, tables: dict, settings) -> RowSum:
    from pyspark.sql import functions as F

    from pipelines.candidates.broadcast_topk import csr_table
    from pipelines.candidates.recent import recent_item_weights

    entries = recent_item_weights(inputs.train, settings.history, settings.decay).select(
        "user_idx", F.col("item_idx").alias("row"), F.col("w").alias("weight")
    )
    table = inputs.read_arrow("item_neighbors", ["item_idx", "neighbor_idx", "sim"])
    csr = csr_table(table, "item_idx", "neighbor_idx", "sim", inputs.n_items)
    return RowSum(entries, csr, entries_key=("recent", settings.history, settings.decay))


def item_cf_source(inputs: SourceInputs, tables: dict, settings):
    from pipelines.candidates.broadcast_topk import source_topk

    return source_topk(inputs, item_cf_kernel(inputs, tables, settings))
