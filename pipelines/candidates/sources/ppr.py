"""ppr: user-level PPR by linearity, PPR(Σ_i w_i e_i) = Σ_i w_i PPR(e_i).

A user's personalization vector puts recency-weighted mass on their last `history` train
items (pipelines/candidates/recent.py; settings `candidates.ppr`). Their PPR vector is then
the same weighted sum of the items' (top-k truncated) `item_ppr` rows: no walk per user.
Items without an item_ppr row (no out-edges, or not a PPR seed) add nothing.

The sum runs in mapInArrow tasks over item_ppr broadcast as CSR
(pipelines/candidates/broadcast_topk.py). The broadcast is ≈ 16 · nnz bytes, nnz = n_items ·
ppr.top_k: 1M items at top_k 100 is ~1.6 GB on the driver and on every executor, about where
it stops being sensible; past that, partition item_ppr by src and join it instead.
"""

from __future__ import annotations

from pipelines.candidates.broadcast_topk import RowSum
from pipelines.candidates.inputs import SourceInputs


def ppr_form(item_ppr, train, *, n_items: int, history: int, decay: float) -> RowSum:
    """Σ_i w_i · item_ppr(i, ·) in kernel form; item_ppr: pyarrow.Table[src, dst, score]."""
    from pyspark.sql import functions as F

    from pipelines.candidates.broadcast_topk import csr_table
    from pipelines.candidates.recent import recent_item_weights

    entries = recent_item_weights(train, history, decay).select(
        "user_idx", F.col("item_idx").alias("row"), F.col("w").alias("weight")
    )
    csr = csr_table(item_ppr, "src", "dst", "score", n_items)
    return RowSum(entries, csr, entries_key=("recent", history, decay))


def ppr_kernel(inputs: SourceInputs, tables: dict, settings) -> RowSum:
    return ppr_form(
        inputs.read_arrow("item_ppr", ["src", "dst", "score"]),
        inputs.train,
        n_items=inputs.n_items,
        history=settings.history,
        decay=settings.decay,
    )


def ppr_source(inputs: SourceInputs, tables: dict, settings):
    from pipelines.candidates.broadcast_topk import source_topk

    return source_topk(inputs, ppr_kernel(inputs, tables, settings))
