"""Offline evaluation of one recommendation table against a holdout: the `metrics` table.

Evaluated users are the distinct users of the holdout; their relevant items are their
distinct held-out items (binary relevance). Accuracy metrics (ranking_metrics) are
averaged over the users of each segment (segments); beyond-accuracy metrics
(beyond_accuracy) are computed on the union of the evaluated users' top-K lists and
reported for segment `all` only.

`RankingEvaluator` takes the users a bucket at a time (run.py reads tables in buckets of
users); `evaluate_rankings` is the same with every user in one bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import polars as pl

from pipelines.evaluation.beyond_accuracy import (
    ExposureSum,
    beyond_accuracy_of_exposure,
    exposure_by_k,
    self_information_of_counts,
)
from pipelines.evaluation.exact_sums import add_sums, float_sums, means_of_sums
from pipelines.evaluation.ranking_metrics import ACCURACY_METRICS, per_user_accuracy
from pipelines.evaluation.segments import (
    POP_HEAD,
    POP_TAIL,
    SEGMENT_ALL,
    head_items_of_counts,
    history_segments_of_counts,
    split_relevant_by_popularity,
)
from pipelines.evaluation.train_stats import TrainStats, train_stats
from schemas.tables import METRICS

TABLES: tuple[str, ...] = ("rankings", "candidates")

# The metrics contract's columns as Polars types (schemas/ is the truth).
METRICS_SCHEMA: dict[str, pl.DataType] = dict(pl.from_arrow(METRICS.empty()).schema)


def _check_columns(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; got columns {frame.columns}")
    # Ids are compared across tables, so they must share one dtype whatever the reader gave.
    out = frame.select(
        *(pl.col(c).cast(pl.Int64 if c == "rank" else pl.String) for c in columns),
    )
    nulls = {c: n for c, n in zip(columns, out.null_count().row(0), strict=True) if n}
    if nulls:
        raise ValueError(f"{name} has null values (column: count) {nulls}")
    return out


def _check_table(table: str) -> None:
    if table not in TABLES and not table.startswith("candidates:"):
        raise ValueError(
            f"table must be one of {list(TABLES)} or 'candidates:<source>', got {table!r}"
        )


def _check_catalog_size(n_catalog_items: int) -> int:
    if isinstance(n_catalog_items, bool) or not isinstance(n_catalog_items, Integral):
        raise ValueError(f"n_catalog_items must be an int, got {n_catalog_items!r}")
    if n_catalog_items < 1:
        raise ValueError(f"n_catalog_items must be >= 1, got {n_catalog_items}")
    return int(n_catalog_items)


def _check_ks(ks: Sequence[int]) -> list[int]:
    if isinstance(ks, str | bytes) or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"every k must be an int >= 1, got {k!r} in ks={list(ks)!r}")
    return sorted({int(k) for k in ks})


def _check_recs(top: pl.DataFrame) -> None:
    bad_rank = top.filter(pl.col("rank") < 1)
    if bad_rank.height:
        raise ValueError(f"recs ranks must be >= 1 (1 = best), got {bad_rank.row(0, named=True)}")
    # Duplicates would make hits@K count one item twice or leave "the" rank ambiguous.
    for key in ("rank", "item_id"):
        dup = top.filter(pl.struct("user_id", key).is_duplicated())
        if dup.height:
            raise ValueError(
                f"recs must have unique (user_id, {key}) pairs; duplicated: "
                f"{dup.sort('user_id', 'rank').head(2).rows(named=True)}"
            )


def _segment_means(sums: pl.DataFrame) -> pl.DataFrame:
    """Mean of every accuracy metric per (segment, k) from the exact per-user sums;
    columns segment, k, metric, value, n_users."""
    return means_of_sums(sums, ["segment", "k"]).select(
        "segment", "k", n_users="n", metric="column", value="value"
    )


def evaluate_rankings(
    recs: pl.DataFrame,
    holdout: pl.DataFrame,
    train: pl.DataFrame,
    ks: Sequence[int],
    table: str,
    n_catalog_items: int,
) -> pl.DataFrame:
    """Offline metrics of `recs` against `holdout`, as the `metrics` table contract.

    recs: user_id, item_id, rank (1 = best, unique per user; extra columns ignored).
    holdout: user_id, item_id, the relevant items of the evaluated split.
    train: user_id, item_id, for history length, item popularity and novelty.
    Returns columns table, metric, k (Int32), segment, value (Float64), n_users (Int64),
    one row per metric x k x segment, sorted by metric, k, segment.
    """
    _check_table(table)
    n_catalog_items = _check_catalog_size(n_catalog_items)
    ks = _check_ks(ks)
    holdout = _check_columns(holdout, "holdout", ("user_id", "item_id"))
    if holdout.height == 0:
        raise ValueError("holdout is empty: there are no users to evaluate")
    train = _check_columns(train, "train", ("user_id", "item_id"))
    recs = _check_columns(recs, "recs", ("user_id", "item_id", "rank"))
    evaluator = RankingEvaluator(ks, train_stats(train))
    evaluator.add(recs, holdout)
    return evaluator.metrics(table, n_catalog_items)


class RankingEvaluator:
    """The metrics of one recommendation table, fed one bucket of users at a time.

    `add` keeps only sums of a bucket: the exact sums of every user's metric values per
    (segment, K) (exact_sums: segments x ks x metrics x float exponents rows) and the item
    exposure of the top-K lists (items x ks rows). `metrics` divides the exact sums by the
    user counts, rounding once, and derives coverage, Gini and novelty from the summed
    exposure, so any split of the users into buckets gives the same table, and what is
    kept does not grow with the number of users.
    """

    def __init__(self, ks: Sequence[int], stats: TrainStats) -> None:
        self.ks = _check_ks(ks)
        self.stats = stats
        self.head = head_items_of_counts(stats.items)
        self.n_users = 0
        self._sums: pl.DataFrame | None = None
        self._exposure = ExposureSum()

    def add(self, recs: pl.DataFrame, holdout: pl.DataFrame) -> None:
        """One bucket: every recommendation and holdout row of its users (recs of users
        outside the holdout are ignored; holdout users without recs score zero)."""
        holdout = _check_columns(holdout, "holdout", ("user_id", "item_id"))
        recs = _check_columns(recs, "recs", ("user_id", "item_id", "rank"))
        # A pair held out twice is still one relevant item (binary relevance).
        relevant = holdout.unique()
        users = relevant.select("user_id").unique()
        top = recs.join(users, on="user_id", how="semi").filter(pl.col("rank") <= max(self.ks))
        _check_recs(top)

        acc_all = per_user_accuracy(top, relevant, self.ks)
        # The train users are scanned once per bucket either way; a semi join hashes only the
        # bucket's users, where a join from them hashed every train user for every bucket.
        history = self.stats.users.join(users, on="user_id", how="semi")
        head_rel, tail_rel = split_relevant_by_popularity(relevant, self.head)
        per_user = pl.concat(
            [
                acc_all.with_columns(pl.lit(SEGMENT_ALL).alias("segment")),
                acc_all.join(history_segments_of_counts(users, history), on="user_id"),
                per_user_accuracy(top, head_rel, self.ks).with_columns(
                    pl.lit(POP_HEAD).alias("segment")
                ),
                per_user_accuracy(top, tail_rel, self.ks).with_columns(
                    pl.lit(POP_TAIL).alias("segment")
                ),
            ],
            how="diagonal",
        )
        self._sums = add_sums(self._sums, float_sums(per_user, ["segment", "k"], ACCURACY_METRICS))
        self._exposure.add(exposure_by_k(top, self.ks))
        self.n_users += users.height

    @property
    def state_rows(self) -> int:
        """Rows kept between buckets: at most segments x ks x metrics x float exponents plus
        items x ks, however many users were added."""
        return (self._sums.height if self._sums is not None else 0) + self._exposure.rows

    def metrics(self, table: str, n_catalog_items: int) -> pl.DataFrame:
        """The `metrics` rows of everything added (see `evaluate_rankings`)."""
        _check_table(table)
        n_catalog_items = _check_catalog_size(n_catalog_items)
        if self.n_users == 0:
            raise ValueError("holdout is empty: there are no users to evaluate")
        # Segments without users have no rows here, so they are omitted from the output.
        accuracy = _segment_means(self._sums)
        info, unseen = self_information_of_counts(
            self.stats.items.select("item_id", "n_users"), self.stats.n_users
        )
        beyond = beyond_accuracy_of_exposure(
            self._exposure.total(), self.ks, info, unseen, n_catalog_items
        ).with_columns(
            pl.lit(SEGMENT_ALL).alias("segment"),
            pl.lit(self.n_users, dtype=pl.Int64).alias("n_users"),
        )
        return (
            pl.concat([accuracy, beyond], how="diagonal")
            .with_columns(pl.lit(table).alias("table"))
            .select(pl.col(name).cast(dtype) for name, dtype in METRICS_SCHEMA.items())
            .sort("metric", "k", "segment")
        )
