"""Beyond-accuracy metrics of a set of top-K lists: coverage, Gini index, novelty.

Each is one number for the whole set of top-K lists of the evaluated users, computed from
their item exposure (`item_exposure`, `exposure_by_k`: item-sized counts that add up over
buckets of users) and, for novelty, the train items' self-information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from pipelines.evaluation.pending_sum import PendingSum

BEYOND_ACCURACY_METRICS: tuple[str, ...] = ("coverage", "gini", "novelty")


def _check_catalog(n_recommended_items: int, n_catalog_items: int) -> None:
    if n_catalog_items < 1:
        raise ValueError(f"n_catalog_items must be >= 1, got {n_catalog_items}")
    if n_recommended_items > n_catalog_items:
        raise ValueError(
            f"{n_recommended_items} distinct items are recommended but n_catalog_items is "
            f"{n_catalog_items}; the catalog size must count every recommendable item"
        )


def item_exposure(slots: pl.DataFrame) -> pl.DataFrame:
    """Exposure of every recommended item: columns item_id, exposure (Int64).

    exposure(i) = number of top-K lists that contain i (= slots holding i)
    """
    return slots.group_by("item_id").agg(pl.len().cast(pl.Int64).alias("exposure"))


def gini_index(exposures: pl.Series | Sequence[int], n_items: int) -> float:
    """Gini index of item exposure over all n_items catalog items.

    `exposures` lists the non-zero exposures; the n_items - len(exposures) missing
    items have exposure 0. With all exposures sorted ascending x_1 <= ... <= x_n:

    G = sum_{i=1}^{n} (2i - n - 1) x_i / (n * sum_{i=1}^{n} x_i),  G = 0 if sum x_i = 0

    0 = every item equally exposed, (n - 1) / n = a single item gets all exposure.
    """
    x = pl.Series("x", exposures, dtype=pl.Float64)
    if (x < 0).any():
        raise ValueError(f"exposures must be >= 0, got {x.filter(x < 0).to_list()[:5]}")
    x = x.filter(x > 0)
    _check_catalog(x.len(), n_items)
    total = x.sum()
    if total == 0:
        return 0.0
    # The zero exposures occupy positions 1..n-m and contribute nothing to the sum,
    # so only the m non-zero values are materialised, at positions n-m+1..n.
    m = x.len()
    ordered = x.sort()
    positions = pl.int_range(n_items - m + 1, n_items + 1, eager=True).cast(pl.Float64)
    weighted = ((2.0 * positions - n_items - 1.0) * ordered).sum()
    return float(weighted / (n_items * total))


def self_information_of_counts(
    item_users: pl.DataFrame, n_users: int
) -> tuple[pl.DataFrame, float]:
    """Self-information -log2 p(i) of every train item, plus the value for unseen items, from
    the distinct train users per item (item_id, n_users) and the number N of distinct train
    users (e.g. a TrainStats).

    p(i) = |{distinct train users who interacted with i}| / N.
    Smoothing: an item with no train interaction gets p = 1 / N, i.e. it is treated as
    if one user had seen it, so its novelty is finite (log2 N, the train maximum).
    With an empty train, N is taken as 1, so every item scores 0.
    Returns (frame with item_id, self_info; self_info of unseen items).
    """
    n = max(n_users, 1)
    info = item_users.select("item_id", (-(pl.col("n_users") / n).log(2)).alias("self_info"))
    return info, math.log2(n)


def novelty_of_exposure(exposure: pl.DataFrame, info: pl.DataFrame, unseen: float) -> float:
    """Novelty, the mean self-information of the recommended slots S (0 when S is empty),
    from the slots' item exposure (item_id, exposure) and `self_information_of_counts`:

    Novelty = (1 / |S|) * sum_{(u, i) in S} -log2 p(i)
            = sum_i exposure(i) * -log2 p(i) / sum_i exposure(i)

    from item-sized counts (summed over buckets of users). math.fsum adds exactly, so the
    value does not depend on the order of the items.
    """
    if exposure.height == 0:
        return 0.0
    terms = (
        exposure.join(info, on="item_id", how="left")
        .select(pl.col("exposure") * pl.col("self_info").fill_null(unseen))
        .to_series()
    )
    return math.fsum(terms.to_list()) / int(exposure.get_column("exposure").sum())


def exposure_by_k(top: pl.DataFrame, ks: Sequence[int]) -> pl.DataFrame:
    """Item exposure of the top-K lists for every K: columns k (Int32), item_id, exposure.

    `top` holds recommendations (user_id, item_id, rank); exposures of disjoint sets of
    users add up (`ExposureSum`).
    """
    frames = [
        item_exposure(top.filter(pl.col("rank") <= k)).select(
            pl.lit(k, pl.Int32).alias("k"), "item_id", "exposure"
        )
        for k in sorted(set(ks))
    ]
    return pl.concat(frames)


class ExposureSum(PendingSum):
    """The sum of `exposure_by_k` frames of disjoint sets of users, added bucket by bucket
    (pending_sum.py: O(their rows), not O(buckets × items))."""

    def __init__(self) -> None:
        super().__init__(("k", "item_id"), ("exposure",))


def beyond_accuracy_of_exposure(
    exposure: pl.DataFrame,
    ks: Sequence[int],
    info: pl.DataFrame,
    unseen: float,
    n_catalog_items: int,
) -> pl.DataFrame:
    """Coverage, Gini and novelty for every K from an `exposure_by_k` frame and the train
    self-information (`self_information_of_counts`). Columns metric, k (Int32), value.

    Coverage = |{i : i in some top-K list}| / n_catalog_items."""
    rows: list[dict[str, object]] = []
    for k in sorted(set(ks)):
        at_k = exposure.filter(pl.col("k") == k).select("item_id", "exposure")
        _check_catalog(at_k.height, n_catalog_items)
        values = {
            "coverage": at_k.height / n_catalog_items,
            "gini": gini_index(at_k.get_column("exposure"), n_catalog_items),
            "novelty": novelty_of_exposure(at_k, info, unseen),
        }
        rows.extend({"metric": m, "k": k, "value": values[m]} for m in BEYOND_ACCURACY_METRICS)
    return pl.DataFrame(rows, schema={"metric": pl.String, "k": pl.Int32, "value": pl.Float64})
