"""Top-k per source from the walk events: one shuffle by src, then a numpy count per task."""

from __future__ import annotations

from schemas.tables import ITEM_PPR

#: Pair keys buffered per top-k task before they are sorted and merged (8 bytes each).
TOPK_KEY_BUFFER = 1 << 22


def top_k_partition(batches, k: int, capacity: int):
    """mapInArrow body: every (src, dst) event of this task's sources -> their top-k rows.

    Counts pair keys in bounded memory (O(capacity + distinct pairs), not O(events)), then
    ranks with :func:`udfs.topk.top_k_by_share`; rows come out sorted by (src, rank)."""
    import pyarrow as pa

    from udfs.key_counter import KeyCounter
    from udfs.topk import pair_keys, top_k_by_share

    counter = KeyCounter(2**63, capacity, dense=False)
    for rb in batches:
        keys = pair_keys(
            rb.column(0).to_numpy(zero_copy_only=False), rb.column(1).to_numpy(zero_copy_only=False)
        )
        counter.reserve(keys.shape[0])[:] = keys
    keys, counts = counter.result()
    if keys.shape[0] == 0:
        return
    src, dst, score, rank = top_k_by_share(keys, counts, k)
    yield pa.RecordBatch.from_arrays(
        [pa.array(src), pa.array(dst), pa.array(score), pa.array(rank)],
        names=["src", "dst", "score", "rank"],
    )


def top_k(pairs, top_k: int, parts: int):
    """(src, dst) rows, one per visit or end point -> top_k per src by count share, the src
    itself excluded; ties by dst ascending.

    One shuffle of the events by src, then numpy per task (:func:`top_k_partition`), rather
    than groupBy(src, dst) + a window: that shuffles twice, and its partial aggregation
    merges little because a source's visits are spread over every partition of the walk."""
    from functools import partial

    body = partial(top_k_partition, k=int(top_k), capacity=TOPK_KEY_BUFFER)
    return (
        pairs.select("src", "dst").repartition(parts, "src").mapInArrow(body, ITEM_PPR.spark_ddl())
    )
