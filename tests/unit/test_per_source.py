"""Per-source rankings and overlap of a candidates table (pipelines/evaluation/per_source)."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.evaluation.per_source import overlap_markdown, source_ranking
from tests.whole_table import source_overlap

CANDS = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
        "item_id": ["a", "b", "c", "a", "d"],
        "rank": [1, 2, 3, 1, 2],
        "score": [3.0, 2.0, 1.0, 2.0, 1.0],
        "score_x": [0.1, 0.5, None, 0.2, 0.2],
        "score_y": [None, 0.3, 0.9, 1.0, None],
    }
)


def test_source_ranking_orders_by_its_own_column():
    x = source_ranking(CANDS, "x").sort("user_id", "rank")
    # u1: b (0.5) before a (0.1); u2: a tie at 0.2 broken by item_id.
    assert x.rows() == [("u1", "b", 1), ("u1", "a", 2), ("u2", "a", 1), ("u2", "d", 2)]
    y = source_ranking(CANDS, "y").sort("user_id", "rank")
    assert y.rows() == [("u1", "c", 1), ("u1", "b", 2), ("u2", "a", 1)]


def test_overlap_is_the_shared_share_of_top_k():
    ov = {
        (r["source"], r["other"]): r["overlap"]
        for r in source_overlap(CANDS, ["x", "y"], 1).iter_rows(named=True)
    }
    # top-1: x = {u1: b, u2: a}; y = {u1: c, u2: a} -> one shared slot of two.
    assert ov[("x", "y")] == pytest.approx(1 / 2)
    assert ov[("y", "x")] == pytest.approx(1 / 2)
    assert ov[("x", "x")] == 1.0
    ov2 = {
        (r["source"], r["other"]): r["overlap"]
        for r in source_overlap(CANDS, ["x", "y"], 5).iter_rows(named=True)
    }
    # all: x has 4 slots, 2 of them (u1 b, u2 a) also in y; y has 3 slots, 2 in x.
    assert ov2[("x", "y")] == pytest.approx(2 / 4)
    assert ov2[("y", "x")] == pytest.approx(2 / 3)
    md = overlap_markdown(source_overlap(CANDS, ["x", "y"], 5), 5)
    assert "| x | 1.000 | 0.500 |" in md and "| y | 0.667 | 1.000 |" in md
