"""neighbors stage pieces on Spark against brute-force numpy models."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import NeighborsConfig, load_config
from pipelines.neighbors.embed import recent_mean_vectors
from pipelines.neighbors.items import capped_histories, choose_strategy, item_neighbors
from pipelines.neighbors.users import knn_spark
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.pipeline_fixtures import random_events, write_events
from udfs.knn import brute_force_topk

pytestmark = pytest.mark.spark

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _train(spark, events):
    return spark.createDataFrame(
        [(u, i, f"i{i:03d}", BASE + dt.timedelta(minutes=t), None) for u, i, t in events],
        "user_idx int, item_idx int, item_id string, ts timestamp, value double",
    )


def _random_log(seed, n_users=40, n_items=25, max_len=15):
    rng = random.Random(seed)
    events = []
    for u in range(n_users):
        for t in range(rng.randint(1, max_len)):
            events.append((u, min(int(rng.paretovariate(0.8)) - 1, n_items - 1), t))
    return events, n_items


def numpy_item_neighbors(events, n_items, max_history, min_support, k):
    by_user = defaultdict(list)
    for u, i, t in events:
        by_user[u].append((t, f"i{i:03d}", i))
    x = np.zeros((len(by_user), n_items))
    for row, (_u, evs) in enumerate(sorted(by_user.items())):
        for _, _, i in sorted(evs, reverse=True)[:max_history]:
            x[row, i] = 1.0
    w = 1.0 / np.log2(1.0 + x.sum(axis=1))
    c = x.T @ (w[:, None] * x)
    n = x.T @ x
    out = {}
    for i in range(n_items):
        cand = [
            (j, c[i, j] / math.sqrt(c[i, i] * c[j, j]))
            for j in range(n_items)
            if j != i and n[i, j] >= min_support
        ]
        cand.sort(key=lambda p: (-p[1], p[0]))
        if cand:
            out[i] = cand[:k]
    return out


def _item_neighbors(spark, events, max_history, min_support, k, strategy):
    hist = capped_histories(_train(spark, events), max_history)
    df, info = item_neighbors(
        hist, max_history=max_history, min_support=min_support, item_k=k, strategy=strategy
    )
    assert info["strategy"] == strategy and info["history_rows"] == hist.count()
    return df


@pytest.mark.parametrize("strategy", ["broadcast", "spark"])
@pytest.mark.parametrize("seed,max_history,min_support,k", [(1, 100, 1, 5), (2, 4, 2, 3)])
def test_item_neighbors_match_numpy(spark, seed, max_history, min_support, k, strategy):
    events, n_items = _random_log(seed)
    got = defaultdict(list)
    df = _item_neighbors(spark, events, max_history, min_support, k, strategy)
    for r in df.collect():
        got[r.item_idx].append((r.rank, r.neighbor_idx, r.sim))
    want = numpy_item_neighbors(events, n_items, max_history, min_support, k)
    assert set(got) == set(want)
    for i, lst in want.items():
        mine = sorted(got[i])
        assert [r for r, _, _ in mine] == list(range(1, len(lst) + 1))
        assert [j for _, j, _ in mine] == [j for j, _ in lst], i
        assert [s for _, _, s in mine] == pytest.approx([s for _, s in lst], rel=1e-9)


def test_item_strategies_give_identical_tables(spark):
    """The broadcast kernel and the Spark join sum the same integers: the same table to the
    last bit, ties included (many equal similarities in a small catalog)."""
    events, _ = _random_log(7, n_users=300, n_items=15, max_len=8)
    tables = [
        sorted(_item_neighbors(spark, events, 6, 1, 4, s).collect()) for s in ("broadcast", "spark")
    ]
    assert len(tables[0]) > 40 and tables[0] == tables[1]


def test_auto_strategy_switches_at_the_history_row_limit():
    assert choose_strategy("auto", 100, 100)[0] == "broadcast"
    assert choose_strategy("auto", 101, 100) == (
        "spark",
        "101 history rows > item_broadcast_max_rows=100",
    )
    assert choose_strategy("spark", 1, 100)[0] == "spark"


def test_recent_mean_vectors_match_numpy(spark):
    events, n_items = _random_log(3, n_users=12)
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((n_items, 5))
    item_df = spark.createDataFrame(
        [(i, [float(v) for v in vecs[i]]) for i in range(n_items)],
        "item_idx int, vec array<double>",
    )
    history, decay = 4, 0.7
    got = {
        r.user_idx: np.array(r.vec)
        for r in recent_mean_vectors(_train(spark, events), item_df, history, decay).collect()
    }
    by_user = defaultdict(list)
    for u, i, t in events:
        by_user[u].append((t, f"i{i:03d}", i))
    assert set(got) == set(by_user)
    for u, evs in by_user.items():
        s = sum(
            decay**p * vecs[i] for p, (_, _, i) in enumerate(sorted(evs, reverse=True)[:history])
        )
        np.testing.assert_allclose(got[u], s / np.linalg.norm(s), rtol=1e-9)


def _vectors(spark, n, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, d))
    x = centers[rng.integers(0, 12, n)] + 0.3 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.permutation(np.arange(10, 10 + 3 * n, 3))[:n]  # sparse, shuffled user ids
    df = spark.createDataFrame(
        [(int(u), [float(v) for v in row]) for u, row in zip(ids, x, strict=True)],
        "user_idx int, vec array<double>",
    ).repartition(3)
    return df, ids, x.astype(np.float32)


def test_knn_spark_flat_is_brute_force(spark):
    df, ids, x = _vectors(spark, 300, 8, 4)
    cfg = NeighborsConfig(user_k=6, index="flat", query_batch=50)
    out, info = knn_spark(spark, df, cfg, seed=1)
    got = defaultdict(list)
    for r in out.collect():
        got[r.user_idx].append((r.rank, r.neighbor_idx, r.sim))
    want = brute_force_topk(x, x, np.arange(len(ids)), 6)
    assert info["index"] == "flat" and set(got) == {int(u) for u in ids}
    for row, u in enumerate(ids):
        mine = sorted(got[int(u)])
        assert [k for k, _, _ in mine] == list(range(1, 7))
        assert [n for _, n, _ in mine] == [int(ids[r]) for r, _ in want[row]]
        assert [s for _, _, s in mine] == pytest.approx([s for _, s in want[row]], abs=1e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_knn_spark_approximate_recall(spark, kind):
    df, ids, x = _vectors(spark, 2000, 8, 5)
    cfg = NeighborsConfig(user_k=10, index=kind, ivf_nlist=32, ivf_nprobe=8, query_batch=500)
    out, info = knn_spark(spark, df, cfg, seed=1)
    got = defaultdict(set)
    for r in out.collect():
        got[r.user_idx].add(r.neighbor_idx)
    sample = np.random.default_rng(0).choice(len(ids), 150, replace=False)
    want = brute_force_topk(x, x[sample], sample, 10)
    recall = np.mean(
        [
            len(got[int(ids[row])] & {int(ids[r]) for r, _ in w}) / 10
            for row, w in zip(sample, want, strict=True)
        ]
    )
    assert info["index"] == kind and recall >= 0.95, recall


def test_neighbors_stage_writes_both_tables(spark, tmp_path):
    rows = random_events(6)
    write_events(tmp_path, rows)
    cfg = load_config(
        None,
        [
            "neighbors.user_k=3",
            "neighbors.item_k=4",
            "neighbors.als_rank=4",
            "neighbors.als_iterations=3",
        ],
    )
    run_stages(tmp_path, cfg, [STAGES["split"], STAGES["neighbors"]])
    un = tableio.read_polars(tmp_path, "user_neighbors")
    train_users = set(tableio.read_polars(tmp_path, "train")["user_id"])
    assert set(un["user_id"]) == train_users  # every user with train events has neighbors
    assert (un["user_id"] != un["neighbor_id"]).all()
    assert un.group_by("user_id").len()["len"].max() == 3
    assert (un["sim"] <= 1.0 + 1e-9).all()
    inb = tableio.read_polars(tmp_path, "item_neighbors")
    assert inb.group_by("item_idx").len()["len"].max() <= 4
    # An item only in the catalog (never in train) has no neighbors and is nobody's neighbor.
    catalog_only = set(
        tableio.read_polars(tmp_path, "items").filter(pl.col("item_id").str.starts_with("z"))[
            "item_idx"
        ]
    )
    assert not catalog_only & (set(inb["item_idx"]) | set(inb["neighbor_idx"]))
