"""Candidate sources on Spark against plain-Python models built from the run's own tables."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.pipeline_fixtures import random_events, write_events
from udfs.multihop import multi_hop_reference

pytestmark = pytest.mark.spark

ALL = ["transition", "ppr", "item_cf", "user_cf"]


def _recent(train: pl.DataFrame, history: int, decay: float) -> dict[str, dict[str, float]]:
    """user -> {item: weight}: decay**p over the last `history` events, summing to 1."""
    out = {}
    for (u,), g in train.group_by(["user_id"]):
        evs = sorted(
            g.iter_rows(named=True), key=lambda r: (r["ts"], r["item_id"], r["value"]), reverse=True
        )
        w = defaultdict(float)
        for p, r in enumerate(evs[:history]):
            w[r["item_id"]] += decay**p
        total = sum(w.values())
        out[u] = {i: v / total for i, v in w.items()}
    return out


def _top(scores: dict[str, float], seen: set[str], k: int) -> dict[str, float]:
    ranked = sorted(
        ((i, s) for i, s in scores.items() if i not in seen and s > 0), key=lambda p: -p[1]
    )
    return dict(ranked[:k])


def model_transition(train, edges, n_items, cfg):
    """Per seed item the multi-hop definition (udfs.multihop reference), then Σ_i s_i T(i, ·)."""
    from udfs.csr import csr_from_edges

    t = cfg.transition
    seeds = _recent(train, t.last, t.last_decay)
    csr = csr_from_edges(*(edges[c].to_numpy() for c in ("src", "dst", "prob")), n_items)
    table = {}
    for i in {i for s in seeds.values() for i in s}:
        table[i] = dict(
            multi_hop_reference(
                *csr,
                int(i),
                hops=t.hops,
                hop_decay=t.hop_decay,
                beam=t.beam,
                k=cfg.per_source,
            )
        )
    return model_weighted(seeds, table)


def model_weighted(weights, table):
    """user -> Σ_i w_i · table[i] (table: item -> {item: score})."""
    res = {}
    for u, ws in weights.items():
        acc = defaultdict(float)
        for i, w in ws.items():
            for j, s in table.get(i, {}).items():
                acc[j] += w * s
        res[u] = acc
    return res


def _by_src(df, src, dst, score):
    out = defaultdict(dict)
    for r in df.iter_rows(named=True):
        out[r[src]][r[dst]] = r[score]
    return out


@pytest.fixture(scope="module")
def run_dir(spark, tmp_path_factory):
    """Random events plus: a user whose events all fall after the test cut-off (no train
    history), a user with exactly one event, an item only in the holdout and one only in the
    catalog."""
    tmp = tmp_path_factory.mktemp("sources")
    rows = random_events(11, n_users=25, n_items=30)
    late = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)
    rows += [
        {"user_id": "cold", "item_id": "i001", "ts": late, "event_type": None, "value": 1.0},
        {
            "user_id": "one",
            "item_id": "i002",
            "ts": dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC),
            "event_type": None,
            "value": 1.0,
        },
        {"user_id": "u000", "item_id": "new_item", "ts": late, "event_type": None, "value": 1.0},
    ]
    rows = [r for r in rows if not (r["user_id"] == "one" and r["item_id"] != "i002")]
    write_events(tmp, rows)
    cfg = load_config(
        None,
        [
            "split.method=time_cutoff",
            'split.valid_cutoff="2024-01-02T20:00:00Z"',
            'split.test_cutoff="2024-01-03T00:00:00Z"',
            "graph.reverse_weight=0.3",
            "ppr.walks_per_node=300",
            "ppr.top_k=20",
            "neighbors.als_rank=4",
            "neighbors.als_iterations=3",
            "neighbors.user_k=5",
            "neighbors.min_support=1",
            f"candidates.sources={ALL}",
            "candidates.per_source=8",
            "candidates.top_n=200",
            "candidates.transition.beam=6",
        ],
    )
    stages = [STAGES[s] for s in ("split", "graph", "ppr", "neighbors", "candidates")]
    run_stages(tmp, cfg, stages)
    return tmp, cfg


def test_each_source_column_matches_its_model(run_dir):
    tmp, cfg = run_dir
    c = cfg.candidates
    items = tableio.read_polars(tmp, "items")
    name = dict(zip(items["item_idx"], items["item_id"], strict=True))
    train = tableio.read_polars(tmp, "train")
    seen = defaultdict(set)
    for u, i in train.select("user_id", "item_id").iter_rows():
        seen[u].add(i)
    idx_train = train.with_columns(pl.col("item_idx").alias("item_id"))  # models work on idx
    models = {
        "transition": model_transition(
            idx_train, tableio.read_polars(tmp, "graph_edges"), items.height, c
        ),
        "ppr": model_weighted(
            _recent(idx_train, c.ppr.history, c.ppr.decay),
            _by_src(tableio.read_polars(tmp, "item_ppr"), "src", "dst", "score"),
        ),
        "item_cf": model_weighted(
            _recent(idx_train, c.item_cf.history, c.item_cf.decay),
            _by_src(tableio.read_polars(tmp, "item_neighbors"), "item_idx", "neighbor_idx", "sim"),
        ),
    }
    nb = _by_src(tableio.read_polars(tmp, "user_neighbors"), "user_id", "neighbor_id", "sim")
    recent_users = _recent(idx_train, c.user_cf.history, c.user_cf.decay)
    models["user_cf"] = model_weighted(nb, recent_users)
    cands = tableio.read_polars(tmp, "candidates")
    for source, model in models.items():
        col = f"score_{source}"
        got = defaultdict(dict)
        for r in cands.filter(pl.col(col).is_not_null()).iter_rows(named=True):
            got[r["user_id"]][r["item_id"]] = r[col]
        for u, scores in model.items():
            named = {name[j]: s for j, s in scores.items()}
            want = _top(named, seen[u], c.per_source)
            # Ties at the cut-off may keep either item: compare the score multiset, and the
            # items above the last score.
            assert sorted(got[u].values()) == pytest.approx(sorted(want.values()), rel=1e-9), (
                source,
                u,
            )
            floor = min(want.values(), default=0)
            assert {i for i, s in got[u].items() if s > floor * (1 + 1e-9)} == {
                i for i, s in want.items() if s > floor * (1 + 1e-9)
            }, (source, u)
            assert not set(got[u]) & seen[u]


def test_cold_one_event_and_unseen_items(run_dir):
    tmp, _ = run_dir
    cands = tableio.read_polars(tmp, "candidates")
    users = set(tableio.read_polars(tmp, "events")["user_id"])
    assert set(cands["user_id"]) == users  # nobody dropped, holdout-only users included
    train_users = set(tableio.read_polars(tmp, "train")["user_id"])
    assert "cold" not in train_users
    cold = cands.filter(pl.col("user_id") == "cold")
    assert cold.height > 0 and all(s == ["popular"] for s in cold["sources"].to_list())
    one = cands.filter(pl.col("user_id") == "one")
    assert "i002" not in set(one["item_id"])  # seen
    assert {"transition", "popular"} <= {s for lst in one["sources"].to_list() for s in lst}
    # Items never seen in train cannot be proposed by any source.
    assert not {"new_item", "z0", "z1", "z2"} & set(cands["item_id"])
    ranks = cands.group_by("user_id").agg(pl.col("rank").sort())
    assert all(r.to_list() == list(range(1, len(r) + 1)) for r in ranks["rank"])


def test_missing_source_table_is_a_clear_error(spark, tmp_path):
    from pipelines.errors import StageOrderError

    write_events(tmp_path, random_events(12))
    cfg = load_config(None, ['candidates.sources=["item_cf"]'])
    run_stages(tmp_path, cfg, [STAGES["split"]])
    with pytest.raises(StageOrderError, match="item_neighbors"):
        run_stages(tmp_path, cfg, [STAGES["candidates"]])


def test_fused_score_is_the_weighted_max_normalised_sum(run_dir):
    tmp, cfg = run_dir
    cands = tableio.read_polars(tmp, "candidates")
    names = ["transition", "ppr", "item_cf", "user_cf", "popular"]
    # top_n exceeds every union here, so each source's whole list (and its max) is present.
    want = pl.sum_horizontal(
        [
            (pl.col(f"score_{s}") / pl.col(f"score_{s}").max().over("user_id")).fill_null(0.0)
            * cfg.candidates.weights.get(s, 1.0)
            for s in names
        ]
    )
    got = cands.with_columns(want.alias("want"))
    assert got["score"].to_list() == pytest.approx(got["want"].to_list(), rel=1e-12)
    ordered = got.sort(["user_id", "rank"])
    for (_u,), g in ordered.group_by(["user_id"]):
        assert g["score"].to_list() == sorted(g["score"].to_list(), reverse=True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_fusion_rejects_a_non_finite_score_naming_the_source(spark, bad):
    from pipelines.candidates.fusion import fuse_sources

    schema = "user_idx int, item_idx int, score double"
    good = spark.createDataFrame([(0, 1, 0.5), (0, 2, 0.25)], schema)
    # Spark orders NaN above every number: unchecked, item 3 would rank first.
    broken = spark.createDataFrame([(0, 3, bad), (0, 1, 0.1)], schema)
    fused = fuse_sources({"ppr": good, "user_cf": broken}, {}, "weighted", 60.0, 10, 2)
    with pytest.raises(Exception, match=r"candidate source 'user_cf' produced a non-finite"):
        fused.collect()


def test_fusion_of_signed_scores_is_as_documented(spark):
    """weighted: score / the user's best score of that source when it is > 0 (a negative score
    lowers the item), 0 from a source whose best score is <= 0."""
    from pipelines.candidates.fusion import fuse_sources

    schema = "user_idx int, item_idx int, score double"
    a = spark.createDataFrame([(0, 1, 2.0), (0, 2, -1.0), (1, 1, -0.5), (1, 2, -2.0)], schema)
    b = spark.createDataFrame([(0, 3, 1.0), (1, 3, 4.0)], schema)
    rows = fuse_sources({"user_cf": a, "popular": b}, {}, "weighted", 60.0, 10, 2).collect()
    got = {(r["user_idx"], r["item_idx"]): r["score"] for r in rows}
    assert got == {
        (0, 1): 2.0 / 2.0,
        (0, 2): -1.0 / 2.0,
        (0, 3): 1.0 / 1.0,
        (1, 1): 0.0,  # user 1's best user_cf score is -0.5: nothing to normalise by
        (1, 2): 0.0,
        (1, 3): 4.0 / 4.0,
    }
