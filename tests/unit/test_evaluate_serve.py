"""Label-free metrics of a serve run and `--against` scoring, against hand computations."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from pipelines.evaluation.run import first_new_events
from tests.whole_table import score_against, serve_metrics

RECS = pl.DataFrame(
    {
        "user_id": ["a", "a", "a", "b", "b", "b"],
        "item_id": ["x", "y", "z", "x", "w", "y"],
        "rank": [1, 2, 3, 1, 2, 3],
    }
)
TRAIN = pl.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["v", "v", "x"]})


def test_serve_metrics_need_no_labels():
    m = serve_metrics(RECS, TRAIN, [2], "rankings", n_items=5)
    got = {r["metric"]: r["value"] for r in m.iter_rows(named=True)}
    # top-2 slots: a {x, y}, b {x, w} -> 3 distinct of 5 items; exposures x 2, y 1, w 1.
    assert got["coverage"] == pytest.approx(3 / 5)
    # Gini over 5 items, exposures sorted 0, 0, 1, 1, 2: Σ (2i - n - 1) x_i / (n Σ x).
    assert got["gini"] == pytest.approx(
        ((2 * 3 - 6) * 1 + (2 * 4 - 6) * 1 + (2 * 5 - 6) * 2) / (5 * 4)
    )
    # Novelty: p(x) = 1/3 (c), p(y) = p(w) = 1/3 smoothed (unseen: log2 N with N = 3).
    assert got["novelty"] == pytest.approx(math.log2(3))
    assert (
        got["users"] == 2 and got["catalog_items"] == 5 and got["recommended_items"] == 3
    )  # at the largest k
    assert set(m["segment"]) == {"all"} and set(m["n_users"]) == {2}


def test_first_new_event_and_against_scores():
    t = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    new = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "d"],
            "item_id": ["z", "x", "q", "x"],
            "ts": [t + dt.timedelta(hours=2), t + dt.timedelta(hours=1), t, t],
        }
    )
    assert first_new_events(new).sort("user_id").rows() == [("a", "x"), ("b", "q"), ("d", "x")]
    metrics, counts = score_against(RECS, new, TRAIN, [1, 3], n_items=5)
    got = {
        (r["metric"], r["k"]): r["value"]
        for r in metrics.filter(pl.col("segment") == "all").iter_rows(named=True)
    }
    # a's target x is at rank 1; b's q is not recommended; d has no rankings (not scored).
    assert got[("hr", 1)] == pytest.approx(1 / 2) and got[("ndcg", 3)] == pytest.approx(1 / 2)
    assert counts == {
        "new_events": 4,
        "users_with_rankings": 2,
        "users_with_new_events": 3,
        "users_scored": 2,
        "users_without_new_events": 0,
        "new_users_without_rankings": 1,
    }
