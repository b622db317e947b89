"""user_cf: the recent items of a user's neighbors, weighted by similarity.

score(u, j) = Σ_v sim(u, v) · w_v(j), v over user_neighbors(u), w_v the recency weights of
v's last `history` train events (settings `candidates.user_cf`, summing to 1). Only items
with score > 0 are candidates.

The weighted-row-sum kernel with the roles swapped (pipelines/candidates/broadcast_topk.py):
a user's entries are its neighbours with their similarities, the table is user -> recent
(item, w), collected to the driver as CSR and broadcast once. That table grows with the
users: ≈ 16 · nnz bytes, nnz ≤ n_users · history, so ~1.6 GB at 10M users with history 10 —
the first of the history sources to outgrow a broadcast; past that, partition the recent
table by user and join it to the neighbour pairs instead.
"""

from __future__ import annotations

from pipelines.candidates.broadcast_topk import RowSum
from pipelines.candidates.inputs import SourceInputs


def user_cf_kernel(inputs: SourceInputs, tables: dict, settings) -> RowSum:
    from pyspark.sql import functions as F

    from pipelines.candidates.broadcast_topk import csr_table
    from pipelines.candidates.recent import recent_item_weights

    recent = recent_item_weights(inputs.train, settings.history, settings.decay).toArrow()
    users = recent.column("user_idx").to_numpy()
    n_rows = int(users.max()) + 1 if users.size else 0
    csr = csr_table(recent, "user_idx", "item_idx", "w", n_rows)

    entries = (
        tables["user_neighbors"]
        .join(inputs.user_ids, "user_id")
        .join(
            inputs.every_user_id.select(
                F.col("user_idx").alias("row"), F.col("user_id").alias("neighbor_id")
            ),
            "neighbor_id",
        )
        # Neighbours past the last user with train events have no recent items.
        .filter(F.col("row") < n_rows)
        .select("user_idx", "row", F.col("sim").alias("weight"))
    )
    return RowSum(entries, csr, positive_only=True)


def user_cf_source(inputs: SourceInputs, tables: dict, settings):
    from pipelines.candidates.broadcast_topk import source_topk

    return source_topk(inputs, user_cf_kernel(inputs, tables, settings))
