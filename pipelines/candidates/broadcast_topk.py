"""Per-user top lists from a weighted sum of rows of a table broadcast once as CSR.

The history-based sources (ppr, item_cf, user_cf) score user u by Σ_i w_u(i) · row_i of a
table. As a Spark join + groupBy that expands users × entries × row length rows (~1,000 per
user) and shuffles them all. Here the table is built on the driver as CSR, broadcast once,
and each mapInArrow task expands its users' rows in numpy (udfs/weighted_topk.py): only the
users' entries (a few per user) and their seen items are shuffled, and each task emits at most
k rows per user.

The broadcast holds 12 bytes per table entry (int32 column, float64 value) plus 8 per row, on
the driver (with its serialized copy: ≈ 16 · nnz bytes in all) and on every executor. Each
source's docstring says where that stops being sensible for its table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA = "user_idx int, item_idx int, score double"


@dataclass(frozen=True)
class RowSum:
    """A source in kernel form: user u's list is the top k of Σ weight · csr[row] over u's
    entries, seen items removed. `broadcast_topk` runs one alone (the source's `fn`);
    pipelines/candidates/one_pass.py runs every source of a run and their fusion in one pass.
    """

    # DataFrame[user_idx, row, weight]; None: every user has the one entry (row 0, weight 1),
    # so a single-row table is a list every user gets (popular's head).
    entries: Any
    csr: tuple[np.ndarray, np.ndarray, np.ndarray]  # (indptr, indices, values), broadcast
    positive_only: bool = False  # keep only scores > 0
    # Forms with equal keys have the same entries (e.g. ("recent", history, decay)): the
    # one-pass build then groups and ships them once. None: never shared.
    entries_key: Any = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.csr)


def csr_table(table: Any, src: str, dst: str, value: str, n_rows: int):
    """(indptr, indices, values) of a pyarrow table's (src -> dst, value) rows."""
    from udfs.weighted_topk import csr_from_triples

    return csr_from_triples(
        *(table.column(c).to_numpy() for c in (src, dst, value)),
        n_rows,
    )


def flat(lists) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of an Arrow list column; a null list reads as empty."""
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, pc.list_flatten(lists).to_numpy(zero_copy_only=False)


def entry_lists(entries, rows: str = "rows", weights: str = "ws"):
    """DataFrame[user_idx, rows array<int>, ws array<double>]: each user's entries as lists
    (a shuffle of the entries, a few per user)."""
    from pyspark.sql import functions as F

    per_user = entries.groupBy("user_idx").agg(
        F.collect_list(
            F.struct(F.col("row").cast("int").alias("r"), F.col("weight").cast("double").alias("w"))
        ).alias("_e")
    )
    return per_user.select("user_idx", F.col("_e.r").alias(rows), F.col("_e.w").alias(weights))


def with_seen_lists(per_user, seen):
    """per_user with a `seen` array<int> column: the user's items in `seen`
    (DataFrame[user_idx, item_idx] or None: none)."""
    from pyspark.sql import functions as F

    if seen is None:
        return per_user.withColumn("seen", F.array().cast("array<int>"))
    lists = seen.groupBy("user_idx").agg(F.collect_list("item_idx").alias("seen"))
    return per_user.join(lists, "user_idx", "left")


def source_topk(inputs, form: RowSum):
    """A source's DataFrame[user_idx, item_idx, score] from its kernel form (the `fn` of a
    source that has one): top `inputs.per_source`, `inputs.seen` removed."""
    from pyspark.sql import functions as F

    entries = form.entries
    if entries is None:
        entries = inputs.users.select("user_idx", F.lit(0).alias("row"), F.lit(1.0).alias("weight"))
    return broadcast_topk(
        inputs.spark,
        entries,
        inputs.seen,
        form.csr,
        inputs.per_source,
        positive_only=form.positive_only,
    )


def broadcast_topk(spark, entries, seen, csr, k: int, *, positive_only: bool = False):
    """DataFrame[user_idx int, item_idx int, score double]: per user of `entries`
    (DataFrame[user_idx, row, weight]) the top k of Σ weight · csr[row] by (score desc,
    item_idx asc), pairs of `seen` (DataFrame[user_idx, item_idx] or None) removed."""
    per_user = with_seen_lists(entry_lists(entries), seen)
    bc = spark.sparkContext.broadcast(csr)

    def run(batches):
        import pyarrow as pa

        from udfs.weighted_topk import weighted_row_sum_topk

        indptr, indices, values = bc.value
        for rb in batches:
            offsets, rows = flat(rb.column("rows"))
            _, ws = flat(rb.column("ws"))
            seen_offsets, seen_items = flat(rb.column("seen"))
            pos, item, score = weighted_row_sum_topk(
                offsets,
                rows,
                ws,
                indptr,
                indices,
                values,
                seen_offsets,
                seen_items,
                k,
                positive_only=positive_only,
            )
            user = rb.column("user_idx").to_numpy()[pos]
            yield pa.RecordBatch.from_arrays(
                [pa.array(user, pa.int32()), pa.array(item, pa.int32()), pa.array(score)],
                names=["user_idx", "item_idx", "score"],
            )

    return per_user.select("user_idx", "rows", "ws", "seen").mapInArrow(run, SCHEMA)
