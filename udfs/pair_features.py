"""The per-user part of the ranker's features, and the learned order, over rows grouped by user.

Executor side (numpy/pyarrow only). Input: Arrow batches of (user, candidate) rows that a
Spark task delivers sorted by user_id, so one user's rows are contiguous, though a user may
straddle two batches (`user_blocks` holds a user's rows back until the user is complete).
Per block of whole users:

- `source_ranks`: rank_<s>, each candidate's position among its user's candidates by the
  source's score (descending; NaN first, nulls last, as Spark's `desc_nulls_last` orders
  doubles; ties by item_id ascending), null where the source did not propose it;
- `transition_probs`: trans_last1/2, the edge probability from the user's last and
  second-to-last train item (`_l1`, `_l2`) to the candidate (`_dst`), null without an edge;
- `learned_order`: with a model, each row's score and its rank in the user's list (score
  descending, then the candidate rank `fused_rank`).

Cost per block of n rows: O(n log n) for each of the S source orders (one sort of packed
int64 keys each) and the learned order (one lexsort), O(n log E) for the edge lookups,
O(n x trees x depth) for the model.
Memory: one block (a batch plus the held-back user) of features at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from udfs.edge_lookup import lookup
from udfs.topk import rank_runs

__all__ = [
    "learned_order",
    "pair_feature_batches",
    "ranked_batches",
    "source_ranks",
    "transition_probs",
    "user_blocks",
    "user_groups",
]


def user_blocks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Batches sorted by user_id -> tables of whole users: the last user of a batch is held
    back and joined to the next batch's rows. Raises if the rows are not sorted by user."""
    held: pa.Table | None = None
    before = None  # the last user of the blocks yielded so far
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        if held is not None:
            table = pa.concat_tables([held, table])
        users = table.column("user_id").to_numpy(zero_copy_only=False)
        if not (users[:-1] <= users[1:]).all() or (before is not None and users[0] <= before):
            raise ValueError("a task's candidate rows are not sorted by user_id")
        start = int(np.flatnonzero(users != users[-1])[-1]) + 1 if users[0] != users[-1] else 0
        held = table.slice(start)
        if start:
            before = users[start - 1]
            yield table.slice(0, start)
    if held is not None:
        yield held


def user_groups(users: np.ndarray) -> np.ndarray:
    """Run number of each row (rows of one user contiguous): 0, 0, 1, 1, 1, 2, ..."""
    change = np.empty(users.shape[0], dtype=np.int64)
    change[:1] = 0
    change[1:] = users[1:] != users[:-1]
    return np.cumsum(change)


def _nullable(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64(), mask=~valid)


def source_ranks(
    group: np.ndarray, score: np.ndarray, valid: np.ndarray, item_code: np.ndarray
) -> np.ndarray:
    """1-based rank of each row among its group's rows by score, descending as Spark's
    desc_nulls_last orders doubles (NaN first, then by value, then the rows without a
    score: `valid` false); ties by item_code ascending (non-negative ints).

    The order is one sort of int64 keys packing (group, score's dense rank, item_code) when
    they fit in 63 bits (a block's groups and scores are a few thousand), else a lexsort."""
    nan = valid & np.isnan(score)
    real = valid & ~nan
    values, dense = np.unique(-score[real], return_inverse=True)
    slot = np.where(nan, 0, len(values) + 1).astype(np.int64)  # NaN first, no score last
    slot[real] = dense + 1
    n_slots, n_items = len(values) + 2, int(item_code.max(initial=0)) + 1
    n_groups = int(group[-1]) + 1 if group.size else 0
    if n_groups * n_slots * n_items < 2**62:
        key = (group * n_slots + slot) * n_items + item_code
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((item_code, slot, group))
    ranks = np.empty(group.shape[0], dtype=np.float64)
    ranks[order] = rank_runs(group[order])
    return ranks


def transition_probs(
    edges: tuple[np.ndarray, np.ndarray] | None, last: pa.Array, dst: pa.Array
) -> pa.Array:
    """Edge prob from each row's `last` item to its `dst` item (null: no edge, no item, or no
    graph)."""
    n = len(dst)
    if edges is None:
        return pa.nulls(n, pa.float64())
    src = np.asarray(last.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    to = np.asarray(dst.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    values, found = lookup(edges, src, to)
    return _nullable(values, found)


def _doubles(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _item_codes(block: pa.Table) -> np.ndarray:
    """Integers in item_id order: the item's item_idx (`_dst`; ingest numbers the items
    densely in id order), else the ids' positions among the block's sorted distinct ids."""
    dst = block.column("_dst")
    if dst.null_count == 0:
        return np.asarray(dst.to_numpy(), dtype=np.int64)
    items = block.column("item_id").to_numpy(zero_copy_only=False)
    return np.unique(items, return_inverse=True)[1].astype(np.int64)


def pair_features(
    block: pa.Table, sources: Sequence[str], edges: tuple[np.ndarray, np.ndarray] | None
) -> pa.Table:
    """A block of whole users with score_<s> per source, _l1, _l2 and _dst -> the same with
    rank_<s> per source and trans_last1/2 appended."""
    users = block.column("user_id").to_numpy(zero_copy_only=False)
    group = user_groups(users)
    item_code = _item_codes(block)
    for s in sources:
        score = block.column(f"score_{s}")
        valid = np.asarray(score.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        ranks = source_ranks(group, _doubles(score), valid, item_code)
        block = block.append_column(f"rank_{s}", _nullable(ranks, valid))
    for tag in "12":
        probs = transition_probs(
            edges, block.column(f"_l{tag}").combine_chunks(), block.column("_dst").combine_chunks()
        )
        block = block.append_column(f"trans_last{tag}", probs)
    return block


def pair_feature_batches(
    batches: Iterator[pa.RecordBatch],
    sources: Sequence[str],
    edges: tuple[np.ndarray, np.ndarray] | None,
    out: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    """Body of a `mapInArrow` task over rows sorted by user: batches of the `out` columns
    (user_id, item_id and the feature names), with the per-user features filled in."""
    for block in user_blocks(batches):
        yield from pair_features(block, sources, edges).select(list(out)).to_batches()


def learned_order(group: np.ndarray, score: np.ndarray, fused_rank: np.ndarray) -> np.ndarray:
    """Row order of the rankings: by group, then score descending, then fused_rank ascending
    (the candidate order breaks the model's ties). Scores are never NaN (a model's output)."""
    return np.lexsort((fused_rank, -score, group))


def ranked_batches(
    batches: Iterator[pa.RecordBatch],
    sources: Sequence[str],
    edges: tuple[np.ndarray, np.ndarray] | None,
    model_text: str,
    names: Sequence[str],
    keep: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    """Body of a `mapInArrow` task over rows sorted by user: the features, the model's score
    and each user's list in the learned order, as batches of (user_id, item_id, rank, score,
    candidate_score, *keep) with rows in (user, rank) order. The booster is built once per
    task from the model text."""
    import lightgbm as lgb

    from udfs.ranker_score import feature_matrix

    booster = lgb.Booster(model_str=model_text)
    for block in user_blocks(batches):
        feats = pair_features(block, sources, edges)
        for n in names:  # a feature the model knows but this run lacks (a source switched off)
            if n not in feats.column_names:
                feats = feats.append_column(n, pa.nulls(feats.num_rows, pa.float64()))
        score = booster.predict(feature_matrix(feats, names), num_threads=1)
        group = user_groups(feats.column("user_id").to_numpy(zero_copy_only=False))
        order = learned_order(group, score, _doubles(feats.column("fused_rank")))
        ranks = rank_runs(group[order]).astype(np.int32)
        taken = feats.take(pa.array(order))
        yield from pa.table(
            {
                "user_id": taken.column("user_id"),
                "item_id": taken.column("item_id"),
                "rank": pa.array(ranks, pa.int32()),
                "score": pa.array(score[order], pa.float64()),
                "candidate_score": taken.column("fused_score"),
                **{c: taken.column(c) for c in keep},
            }
        ).to_batches()
