"""Coverage, Gini index and novelty on hand-computed cases."""

from __future__ import annotations

import math

import polars as pl
import pytest

from pipelines.evaluation.beyond_accuracy import (
    ExposureSum,
    beyond_accuracy_of_exposure,
    exposure_by_k,
    gini_index,
    item_exposure,
    novelty_of_exposure,
    self_information_of_counts,
)


def _pairs(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String}, orient="row")


# The metrics of one frame of slots or top-K lists, composed of the product's count forms
# the way the evaluation composes them over buckets of users.


def item_self_information(train: pl.DataFrame) -> tuple[pl.DataFrame, float]:
    """Self-information of every train item and of unseen items, from the train rows."""
    item_users = train.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n_users"))
    n_users = train.get_column("user_id").n_unique() if train.height else 0
    return self_information_of_counts(item_users, n_users)


def novelty(slots: pl.DataFrame, train: pl.DataFrame) -> float:
    return novelty_of_exposure(item_exposure(slots), *item_self_information(train))


def beyond_accuracy_metrics(
    top: pl.DataFrame, train: pl.DataFrame, ks: list[int], n_catalog_items: int
) -> pl.DataFrame:
    return beyond_accuracy_of_exposure(
        exposure_by_k(top, ks), ks, *item_self_information(train), n_catalog_items
    )


def test_gini_of_known_exposure_vectors() -> None:
    # [1, 2, 3, 4] over 4 items: positions 1..4.
    assert gini_index([4, 1, 3, 2], 4) == pytest.approx(
        ((2 * 1 - 4 - 1) * 1 + (2 * 2 - 4 - 1) * 2 + (2 * 3 - 4 - 1) * 3 + (2 * 4 - 4 - 1) * 4)
        / (4 * 10)
    )
    # The same exposures in a catalog of 6: two unexposed items take positions 1 and 2.
    assert gini_index([4, 1, 3, 2], 6) == pytest.approx(
        ((2 * 3 - 6 - 1) * 1 + (2 * 4 - 6 - 1) * 2 + (2 * 5 - 6 - 1) * 3 + (2 * 6 - 6 - 1) * 4)
        / (6 * 10)
    )


def test_gini_extremes() -> None:
    assert gini_index([5, 5, 5], 3) == pytest.approx(0.0)
    assert gini_index([7], 5) == pytest.approx((5 - 1) / 5)
    assert gini_index([], 5) == 0.0
    assert gini_index(pl.Series([0, 0], dtype=pl.Int64), 5) == 0.0


def test_gini_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"exposures must be >= 0, got \[-1.0\]"):
        gini_index([3, -1], 4)
    with pytest.raises(
        ValueError, match="3 distinct items are recommended but n_catalog_items is 2"
    ):
        gini_index([1, 1, 1], 2)


def test_catalog_coverage() -> None:
    top = _pairs([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c")]).with_columns(
        rank=pl.Series([1, 2, 1, 2])
    )
    coverage = pl.col("metric") == "coverage"
    got = beyond_accuracy_metrics(top, top, [2], 10).filter(coverage)
    assert got.get_column("value").to_list() == pytest.approx([3 / 10])
    got = beyond_accuracy_metrics(top.clear(), top, [2], 10).filter(coverage)
    assert got.get_column("value").to_list() == [0.0]
    with pytest.raises(ValueError, match="n_catalog_items must be >= 1, got 0"):
        beyond_accuracy_metrics(top, top, [2], 0)


def test_item_exposure_counts_lists() -> None:
    slots = _pairs([("u1", "a"), ("u1", "b"), ("u2", "a")])
    exposure = dict(item_exposure(slots).iter_rows())
    assert exposure == {"a": 2, "b": 1}


TRAIN = _pairs(
    # 4 distinct train users; "a" seen by all 4, "b" by 2 (u1 twice: distinct users count).
    [("u1", "a"), ("u2", "a"), ("u3", "a"), ("u4", "a"), ("u1", "b"), ("u1", "b"), ("u2", "b")]
)


def test_novelty_with_smoothing_for_unseen_items() -> None:
    slots = _pairs([("x", "a"), ("x", "b"), ("y", "z"), ("y", "a")])
    # "z" has no train interaction: p = 1 / N = 1/4.
    expected = (-math.log2(4 / 4) - math.log2(2 / 4) - math.log2(1 / 4) - math.log2(4 / 4)) / 4
    assert novelty(slots, TRAIN) == pytest.approx(expected)
    assert novelty(_pairs([]), TRAIN) == 0.0
    # Empty train: N is taken as 1, so every item has p = 1 and novelty 0.
    assert novelty(slots, _pairs([])) == 0.0


def test_item_self_information() -> None:
    info, unseen = item_self_information(TRAIN)
    assert dict(info.iter_rows()) == pytest.approx({"a": -math.log2(1.0), "b": -math.log2(0.5)})
    assert unseen == pytest.approx(-math.log2(1 / 4))


def test_beyond_accuracy_metrics_per_k() -> None:
    top = pl.DataFrame(
        {
            "user_id": ["x", "x", "y", "y"],
            "item_id": ["a", "b", "a", "z"],
            "rank": [1, 2, 1, 2],
        }
    )
    got = beyond_accuracy_metrics(top, TRAIN, [2, 1], n_catalog_items=5)
    assert got.schema == pl.Schema({"metric": pl.String, "k": pl.Int32, "value": pl.Float64})
    values = {(m, k): v for m, k, v in got.iter_rows()}
    assert values[("coverage", 1)] == pytest.approx(1 / 5)
    assert values[("coverage", 2)] == pytest.approx(3 / 5)
    # k=1: exposures [2] over 5 items -> position 5; k=2: [1, 1, 2] -> positions 3, 4, 5.
    assert values[("gini", 1)] == pytest.approx((2 * 5 - 5 - 1) * 2 / (5 * 2))
    assert values[("gini", 2)] == pytest.approx(
        ((2 * 3 - 5 - 1) * 1 + (2 * 4 - 5 - 1) * 1 + (2 * 5 - 5 - 1) * 2) / (5 * 4)
    )
    assert values[("novelty", 1)] == pytest.approx(0.0)
    assert values[("novelty", 2)] == pytest.approx(
        (-math.log2(4 / 4) - math.log2(2 / 4) - math.log2(4 / 4) - math.log2(1 / 4)) / 4
    )


def test_exposure_sum_equals_one_group_by_and_holds_at_most_twice_the_sum() -> None:
    import random

    rng = random.Random(11)
    frames = [
        pl.DataFrame(
            {
                "k": pl.Series([rng.choice([5, 10]) for _ in range(300)], dtype=pl.Int32),
                "item_id": [f"i{rng.randrange(200)}" for _ in range(300)],
                "exposure": [rng.randrange(1, 9) for _ in range(300)],
            }
        )
        .group_by("k", "item_id")
        .agg(pl.col("exposure").sum())
        for _ in range(40)
    ]
    summed = ExposureSum()
    assert summed.total() is None
    held = []
    for f in frames:
        summed.add(f)
        held.append(summed.rows)
    want = pl.concat(frames).group_by("k", "item_id").agg(pl.col("exposure").sum())
    got = summed.total()
    assert got.sort("k", "item_id").equals(want.sort("k", "item_id"))
    # 2 ks x 200 items at most are summed, and at most as many rows wait beside them; more
    # than that were held at some point, so it did not sum after every frame.
    assert 2 * 200 < max(held) <= 2 * 2 * 200 + 300
