"""Every source's list and their fusion in one mapInArrow pass over users.

When every enabled source has a kernel form (`RowSum`, pipelines/candidates/broadcast_topk.py),
a user's candidates depend only on the user's own entries per source (recent-item weights,
neighbour list), the user's seen items and tables that are the same for every user. So the
users are shuffled once with those short lists (a few dozen values per user), every source's
table is broadcast once as CSR, and each task computes every source's top `per_source`
(udfs/weighted_topk.py) and fuses them (udfs/fuse_lists.py, fuse_sources' semantics bit for
bit) where the user's row already is. The union + shuffle of users × Σ per_source rows
(≤ 500 per user at the defaults) and the two windows of fusion.py are gone; the rows leave
the task already fused, with the user's string id, partitioned by user.

Where the broadcasts stop being sensible: a task holds every source's table at once, in
every Python worker (one per executor core):
    ≈ 16 · (nnz(item_ppr) + nnz(item_neighbors) + nnz(T) + nnz(recent)) bytes,
T the transition table (≤ n_items · per_source entries), recent the users' last items
(≤ n_users · user_cf.history). At the defaults and 1M items that is ~1.6 + 0.8 + 1.6 GB plus
1.6 GB per 10M users: past MAX_BROADCAST_BYTES together, `build_candidates` takes the
per-source path (each table broadcast alone, rows fused by a shuffle) and says so; past
a few GB for one table, that table should be partitioned and joined instead (each source's
docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.candidates.broadcast_topk import RowSum
from schemas import score_column

#: Above this many bytes of broadcast tables together, the one-pass build is not used.
MAX_BROADCAST_BYTES = 4 << 30

#: About this many per-source list rows are held by a task at once: users are fused in
#: slices of MAX_LIST_ROWS // (sources · per_source) (~100 bytes a row at peak).
MAX_LIST_ROWS = 1 << 20


def entry_columns(forms: dict[str, RowSum]) -> tuple[int | None, ...]:
    """Per source, the index i of its _r<i>/_w<i> entry columns: forms with equal
    `entries_key` share the first one's; None for a form without entries."""
    first: dict[Any, int] = {}
    out = []
    for i, form in enumerate(forms.values()):
        if form.entries is None:
            out.append(None)
        elif form.entries_key is None:
            out.append(i)
        else:
            out.append(first.setdefault(form.entries_key, i))
    return tuple(out)


def _user_rows(inputs, forms: dict[str, RowSum], partitions: int | None):
    """DataFrame[user_idx, user_id, _r<i>, _w<i> per distinct entries, seen], one row per
    user of `inputs.user_ids`, hash-partitioned by user_idx, sorted by user_id within."""
    from pipelines.candidates.broadcast_topk import entry_lists, with_seen_lists

    users = inputs.user_ids.select("user_idx", "user_id")
    columns = entry_columns(forms)
    for i, form in enumerate(forms.values()):
        if columns[i] == i:
            users = users.join(entry_lists(form.entries, f"_r{i}", f"_w{i}"), "user_idx", "left")
    users = with_seen_lists(users, inputs.seen)
    users = users.repartition(partitions, "user_idx") if partitions else users
    # Tasks take their users in user_id order, so their output rows come out in (user_id,
    # rank) order: sorting users × top_n rows afterwards would cost a sort (and its spill).
    return users.sortWithinPartitions("user_id")


def fused_candidates(
    inputs,
    forms: dict[str, RowSum],
    weights: dict[str, float],
    method: str,
    rrf_k: float,
    top_n: int,
    partitions: int | None = None,
):
    """forms: {source name: RowSum} in source order -> DataFrame[user_id, item_idx, rank,
    score, sources, score_<name>...]: fuse_sources' output for the sources' `fn` lists (each
    the top `inputs.per_source` of its form, `inputs.seen` removed), keyed by user_id,
    partitioned by user_idx (into `partitions`, default Spark's setting), each partition's
    rows in (user_id, rank) order.

    A NaN or infinite table value is an error naming its source, here on the driver; in the
    tasks, a non-finite list score (fuse_lists) or any other kernel error names it too."""
    from udfs.fuse_lists import non_finite_message

    for name, form in forms.items():
        if not np.isfinite(form.csr[2]).all():
            raise ValueError(non_finite_message(name))
    plan = TaskPlan(
        names=tuple(forms),
        weights=tuple(float(weights.get(n, 1.0)) for n in forms),
        entries=entry_columns(forms),
        positive_only=tuple(f.positive_only for f in forms.values()),
        k=inputs.per_source,
        method=method,
        rrf_k=float(rrf_k),
        top_n=top_n,
    )
    step = max(1, MAX_LIST_ROWS // max(1, len(forms) * plan.k))
    bc = inputs.spark.sparkContext.broadcast([f.csr for f in forms.values()])
    schema = (
        "user_id string, item_idx int, rank int, score double, sources array<string>, "
        + ", ".join(f"{score_column(n)} double" for n in plan.names)
    )

    def run(batches):
        csrs = bc.value
        for rb in batches:
            for lo in range(0, rb.num_rows, step):
                out = fuse_user_batch(rb.slice(lo, step), csrs, plan)
                if out.num_rows:
                    yield out

    return _user_rows(inputs, forms, partitions).mapInArrow(run, schema)


@dataclass(frozen=True)
class TaskPlan:
    """What a task needs besides the user rows and the broadcast tables (per source, in
    source order, except k and the fusion settings)."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    entries: tuple[int | None, ...]  # i of its _r<i>/_w<i>; None: (row 0, weight 1) per user
    positive_only: tuple[bool, ...]
    k: int  # per_source
    method: str
    rrf_k: float
    top_n: int


def fuse_user_batch(rb, csrs, plan: TaskPlan):
    """pyarrow.RecordBatch of user rows (user_id, _r<i>/_w<i> list columns of the sources
    with entries, seen) -> RecordBatch of their fused candidates [user_id, item_idx, rank,
    score, sources, score_<name>...] in (user, rank) order. O(E) for the E expanded table
    terms of the batch's users plus O(k log k) per user and source (udfs/weighted_topk.py),
    then O(N log N) for their N ≤ users · sources · k list rows (udfs/fuse_lists.py)."""
    import pyarrow as pa

    from pipelines.candidates.broadcast_topk import flat
    from udfs.fuse_lists import fuse_lists
    from udfs.weighted_topk import weighted_row_sum_topk

    n = rb.num_rows
    seen_offsets, seen_items = flat(rb.column("seen"))
    lists = []
    for i, csr in enumerate(csrs):
        c = plan.entries[i]
        if c is not None:
            offsets, rows = flat(rb.column(f"_r{c}"))
            _, ws = flat(rb.column(f"_w{c}"))
        else:  # one entry (row 0, weight 1) per user
            offsets, rows, ws = np.arange(n + 1), np.zeros(n, np.int64), np.ones(n)
        try:
            top = weighted_row_sum_topk(
                offsets,
                rows,
                ws,
                *csr,
                seen_offsets,
                seen_items,
                plan.k,
                positive_only=plan.positive_only[i],
            )
        except ValueError as err:  # e.g. a NaN weight: say which source
            raise ValueError(f"candidate source '{plan.names[i]}': {err}") from err
        lists.append(top)
    user, item, rank, score, per_source = fuse_lists(
        lists, plan.names, plan.weights, plan.method, plan.rrf_k, plan.top_n
    )
    proposed = ~np.isnan(per_source)
    sources_offsets = np.zeros(user.shape[0] + 1, dtype=np.int32)
    np.cumsum(proposed.sum(axis=1), out=sources_offsets[1:])
    # Row-major nonzero: each row's sources in source order.
    sources = pa.ListArray.from_arrays(
        pa.array(sources_offsets),
        pa.array(np.asarray(plan.names, dtype=object)[proposed.nonzero()[1]], pa.string()),
        type=pa.list_(pa.field("element", pa.string())),  # Spark's array<string>
    )
    columns = [
        rb.column("user_id").take(pa.array(user)),
        pa.array(item, pa.int32()),
        pa.array(rank, pa.int32()),
        pa.array(score, pa.float64()),
        sources,
        *(
            pa.array(per_source[:, s], pa.float64(), mask=~proposed[:, s])
            for s in range(len(plan.names))
        ),
    ]
    return pa.RecordBatch.from_arrays(
        columns,
        names=["user_id", "item_idx", "rank", "score", "sources"]
        + [score_column(n) for n in plan.names],
    )


def broadcast_bytes(forms: dict[str, Any]) -> int:
    """Bytes of the tables the one-pass build broadcasts (each held by every Python worker)."""
    return sum(f.nbytes for f in forms.values())
