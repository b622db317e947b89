"""Accuracy metrics on hand-computed cases; expected values are written as the formulas."""

from __future__ import annotations

import math

import polars as pl
import pytest

from pipelines.evaluation import evaluate_rankings
from pipelines.evaluation.ranking_metrics import (
    ACCURACY_METRICS,
    ideal_dcg_table,
    per_user_accuracy,
    user_hit_statistics,
)


def _recs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32},
        orient="row",
    )


def _pairs(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String}, orient="row")


# u1: five recommendations, three relevant items of which two are recommended (ranks 1, 3).
# u2: the only relevant item sits at rank 3, so nothing relevant is in its top 2.
# u3: relevant item but no recommendations at all.
RECS = _recs(
    [("u1", i, r) for r, i in enumerate(["a", "b", "c", "d", "e"], start=1)]
    + [("u2", i, r) for r, i in enumerate(["x", "y", "z"], start=1)]
)
RELEVANT = _pairs([("u1", "a"), ("u1", "c"), ("u1", "f"), ("u2", "z"), ("u3", "a")])

EXPECTED: dict[tuple[str, int], dict[str, float]] = {
    ("u1", 2): {
        "hr": 1.0,
        "recall": 1 / 3,
        "precision": 1 / 2,
        "ndcg": (1 / math.log2(2)) / (1 / math.log2(2) + 1 / math.log2(3)),
        "mrr": 1 / 1,
        "map": (1 / 1) / min(3, 2),
    },
    ("u1", 5): {
        "hr": 1.0,
        "recall": 2 / 3,
        "precision": 2 / 5,
        "ndcg": (1 / math.log2(2) + 1 / math.log2(4))
        / (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)),
        "mrr": 1 / 1,
        "map": (1 / 1 + 2 / 3) / min(3, 5),
    },
    # K larger than the list: nothing changes but the precision denominator.
    ("u1", 10): {
        "hr": 1.0,
        "recall": 2 / 3,
        "precision": 2 / 10,
        "ndcg": (1 / math.log2(2) + 1 / math.log2(4))
        / (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)),
        "mrr": 1 / 1,
        "map": (1 / 1 + 2 / 3) / min(3, 10),
    },
    ("u2", 2): dict.fromkeys(ACCURACY_METRICS, 0.0),
    ("u2", 5): {
        "hr": 1.0,
        "recall": 1 / 1,
        "precision": 1 / 5,
        "ndcg": (1 / math.log2(4)) / (1 / math.log2(2)),
        "mrr": 1 / 3,
        "map": (1 / 3) / min(1, 5),
    },
    ("u2", 10): {
        "hr": 1.0,
        "recall": 1 / 1,
        "precision": 1 / 10,
        "ndcg": (1 / math.log2(4)) / (1 / math.log2(2)),
        "mrr": 1 / 3,
        "map": (1 / 3) / min(1, 10),
    },
    **{("u3", k): dict.fromkeys(ACCURACY_METRICS, 0.0) for k in (2, 5, 10)},
}


def test_per_user_accuracy_hand_computed() -> None:
    got = per_user_accuracy(RECS, RELEVANT, [2, 5, 10])
    assert got.columns == ["user_id", "k", *ACCURACY_METRICS]
    assert got.height == len(EXPECTED)
    for row in got.iter_rows(named=True):
        expected = EXPECTED[(row["user_id"], row["k"])]
        for metric in ACCURACY_METRICS:
            assert row[metric] == pytest.approx(expected[metric], rel=1e-12), (row, metric)


def test_evaluate_rankings_averages_users_including_user_without_recs() -> None:
    metrics = evaluate_rankings(
        RECS, RELEVANT, _pairs([]), ks=(2, 5, 10), table="rankings", n_catalog_items=10
    )
    overall = metrics.filter(pl.col("segment") == "all")
    for metric in ACCURACY_METRICS:
        for k in (2, 5, 10):
            row = overall.filter((pl.col("metric") == metric) & (pl.col("k") == k)).row(
                0, named=True
            )
            mean = sum(EXPECTED[(u, k)][metric] for u in ("u1", "u2", "u3")) / 3
            assert row["value"] == pytest.approx(mean, rel=1e-12), (metric, k)
            assert row["n_users"] == 3


def test_ranks_are_taken_as_given_when_not_contiguous() -> None:
    # Ranks 2 and 4 (e.g. after filtering seen items): the discount and the cut-off use
    # the rank value, not the position in the list.
    recs = _recs([("u", "a", 2), ("u", "b", 4)])
    relevant = _pairs([("u", "a"), ("u", "b")])
    got = per_user_accuracy(recs, relevant, [3, 4]).sort("k")
    k3, k4 = got.rows(named=True)
    assert k3["recall"] == pytest.approx(1 / 2)
    assert k3["mrr"] == pytest.approx(1 / 2)
    assert k3["ndcg"] == pytest.approx((1 / math.log2(3)) / (1 / math.log2(2) + 1 / math.log2(3)))
    assert k4["map"] == pytest.approx((1 / 2 + 2 / 4) / min(2, 4))
    assert k4["precision"] == pytest.approx(2 / 4)


def test_user_hit_statistics_columns_and_zero_fill() -> None:
    stats = user_hit_statistics(RECS, RELEVANT, [2]).sort("user_id")
    assert stats.get_column("hits").to_list() == [1, 0, 0]
    assert stats.get_column("n_relevant").to_list() == [3, 1, 1]
    assert stats.get_column("first_hit_rank").to_list() == [1, None, None]
    assert stats.get_column("k").dtype == pl.Int32


def test_ideal_dcg_table() -> None:
    table = ideal_dcg_table(3)
    assert table.get_column("n_ideal").to_list() == [1, 2, 3]
    assert table.get_column("idcg").to_list() == pytest.approx(
        [
            1 / math.log2(2),
            1 / math.log2(2) + 1 / math.log2(3),
            1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4),
        ]
    )
    with pytest.raises(ValueError, match="max_k must be >= 1, got 0"):
        ideal_dcg_table(0)
