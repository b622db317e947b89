"""udfs/pair_features.py against plain-Python references: per-user source ranks in Spark's
desc_nulls_last order, users split across Arrow batches, the learned order's tie break."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from udfs.edge_lookup import edge_table
from udfs.pair_features import (
    learned_order,
    pair_feature_batches,
    ranked_batches,
    source_ranks,
    user_blocks,
    user_groups,
)


def _spark_desc_nulls_last(score):
    """Spark's order key for a double column, descending, nulls last: NaN is the largest."""
    if score is None:
        return (2, 0.0)
    if math.isnan(score):
        return (0, 0.0)
    return (1, -score)


def _reference_ranks(users, scores, items):
    out = [None] * len(users)
    for u in set(users):
        rows = [i for i in range(len(users)) if users[i] == u]
        rows.sort(key=lambda i: (_spark_desc_nulls_last(scores[i]), items[i]))
        for pos, i in enumerate(rows, 1):
            out[i] = float(pos)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_source_ranks_are_spark_desc_nulls_last_then_item_id(seed):
    rng = np.random.default_rng(seed)
    n = 400
    users = sorted(f"u{k}" for k in rng.integers(0, 30, n))
    items = [f"i{k:03d}" for k in rng.integers(0, 60, n)]
    # Few distinct values: many ties, broken by item_id; some NaN and some missing scores.
    scores = [
        None if r < 0.15 else (float("nan") if r < 0.2 else float(rng.integers(0, 4)))
        for r in rng.random(n)
    ]
    valid = np.array([s is not None for s in scores])
    arr = np.array([np.nan if s is None else s for s in scores])
    _, codes = np.unique(np.array(items, dtype=object), return_inverse=True)
    group = user_groups(np.array(users, dtype=object))
    want = _reference_ranks(users, scores, items)
    assert source_ranks(group, arr, valid, codes).tolist() == want
    # Codes too wide to pack with the group and the score take the lexsort path.
    assert source_ranks(group, arr, valid, codes * 2**40).tolist() == want


def _rows(users, items, scores):
    return pa.table(
        {
            "user_id": users,
            "item_id": items,
            "score_a": pa.array(scores, pa.float64()),
            "_l1": pa.array([0] * len(users), pa.int64()),
            "_l2": pa.array([None] * len(users), pa.int64()),
            # item_idx: dense in item_id order, as ingest numbers the items
            "_dst": pa.array([int(i[1:]) for i in items], pa.int64()),
        }
    )


def test_users_split_across_batches_get_the_ranks_of_one_batch():
    users = ["a"] * 5 + ["b"] * 7 + ["c"] * 3
    items = [f"i{k}" for k in (4, 2, 9, 1, 3, 8, 2, 5, 1, 7, 3, 6, 2, 1, 0)]
    scores = [0.5, 0.5, None, 0.9, 0.1, 0.3, 0.3, 0.2, 0.9, None, 0.3, 0.0, 1.0, 1.0, 1.0]
    table = _rows(users, items, scores)
    edges = edge_table(np.array([0, 0]), np.array([1, 2]), np.array([0.25, 0.75]))
    names = ["user_id", "item_id", "rank_a", "trans_last1", "trans_last2"]
    whole = pa.Table.from_batches(
        list(pair_feature_batches(iter(table.to_batches()), ["a"], edges, names))
    )
    for size in (1, 2, 4, 6):
        split = pa.Table.from_batches(
            list(
                pair_feature_batches(
                    iter(table.to_batches(max_chunksize=size)), ["a"], edges, names
                )
            )
        )
        assert split.equals(whole), size
    ranks = _reference_ranks(users, scores, items)
    want_ranks = [None if s is None else r for s, r in zip(scores, ranks, strict=True)]
    assert whole.column("rank_a").to_pylist() == want_ranks
    # Edges from item 0 (every row's last item) to items 1 and 2.
    want = [{"i1": 0.25, "i2": 0.75}.get(i) for i in items]
    assert whole.column("trans_last1").to_pylist() == want
    assert whole.column("trans_last2").null_count == len(users)
    # Without every item's index, the ids themselves give the tie order.
    no_idx = table.set_column(5, "_dst", pa.nulls(len(users), pa.int64()))
    got = pa.Table.from_batches(
        list(pair_feature_batches(iter(no_idx.to_batches()), ["a"], None, names))
    )
    assert got.column("rank_a").to_pylist() == want_ranks


def test_user_blocks_hold_whole_users_and_refuse_unsorted_rows():
    t = pa.table({"user_id": ["a", "a", "b", "b", "b", "c"], "x": list(range(6))})
    blocks = list(user_blocks(iter(t.to_batches(max_chunksize=2))))
    assert [b.column("user_id").to_pylist() for b in blocks] == [
        ["a", "a"],
        ["b", "b", "b"],
        ["c"],
    ]
    bad = pa.table({"user_id": ["a", "b", "a"], "x": [0, 1, 2]})
    with pytest.raises(ValueError, match="not sorted by user_id"):
        list(user_blocks(iter(bad.to_batches(max_chunksize=2))))
    with pytest.raises(ValueError, match="not sorted by user_id"):
        list(user_blocks(iter(bad.to_batches(max_chunksize=1))))


def test_learned_order_breaks_score_ties_by_candidate_rank():
    group = np.array([0, 0, 0, 0, 1, 1])
    score = np.array([0.2, 0.7, 0.2, 0.7, 0.1, 0.1])
    fused_rank = np.array([1.0, 4.0, 3.0, 2.0, 2.0, 1.0])
    assert learned_order(group, score, fused_rank).tolist() == [3, 1, 0, 2, 5, 4]


def test_ranked_batches_score_a_model_whose_source_this_run_lacks():
    """A model fitted with a source the run has switched off sees that source's score and
    rank as missing (NaN), as Booster.predict would on null columns."""
    import lightgbm as lgb

    from udfs.ranker_score import feature_matrix

    rng = np.random.default_rng(3)
    n = 240
    users = [f"u{k // 40}" for k in range(n)]
    items = [f"i{k % 40:02d}" for k in range(n)]
    table = _rows(users, items, rng.random(n).round(2).tolist())
    table = table.append_column("fused_rank", pa.array(np.tile(np.arange(1.0, 41), 6)))
    table = table.append_column("fused_score", pa.array(rng.random(n)))
    names = ["score_a", "rank_a", "score_gone", "rank_gone", "fused_rank"]
    x = rng.normal(size=(n, len(names)))
    booster = lgb.train(
        {"objective": "lambdarank", "verbosity": -1, "min_data_in_leaf": 5, "num_leaves": 7},
        lgb.Dataset(x, (x[:, 0] + x[:, 2] > 0).astype(int), group=[40] * 6, feature_name=names),
        num_boost_round=10,
    )
    text = booster.model_to_string()
    got = pa.Table.from_batches(
        list(ranked_batches(iter(table.to_batches(max_chunksize=50)), ["a"], None, text, names, []))
    )
    feats = pa.Table.from_batches(
        list(pair_feature_batches(iter(table.to_batches()), ["a"], None, ["item_id", "rank_a"]))
    )
    cols = {
        "score_a": table.column("score_a"),
        "rank_a": feats.column("rank_a"),
        "score_gone": pa.nulls(n, pa.float64()),
        "rank_gone": pa.nulls(n, pa.float64()),
        "fused_rank": table.column("fused_rank"),
    }
    want = booster.predict(feature_matrix(pa.table(cols), names))
    by_pair = dict(zip(zip(users, items, strict=True), want, strict=True))
    pairs = zip(got.column("user_id").to_pylist(), got.column("item_id").to_pylist(), strict=True)
    assert got.column("score").to_pylist() == [by_pair[p] for p in pairs]
    assert got.num_rows == n
