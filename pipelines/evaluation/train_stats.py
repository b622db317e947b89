"""What evaluation needs of train, reduced to item- and user-sized tables.

Evaluation reads train for three things: each user's history length (segments), each
item's number of train rows (the popularity head) and of distinct train users (novelty).
All three are counts that add up over disjoint sets of users, so they are computed one
bucket of users at a time and summed: the train table (events-sized) is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from pipelines.evaluation.pending_sum import PendingSum
from pipelines.evaluation.segments import history_counts


@dataclass(frozen=True)
class TrainStats:
    """Counts of a train table.

    items: item_id, n_rows (train rows of the item), n_users (distinct train users of it).
    users: user_id, n_history (train rows of the user), one row per train user.
    """

    items: pl.DataFrame
    users: pl.DataFrame

    @property
    def n_rows(self) -> int:
        return int(self.items.get_column("n_rows").sum()) if self.items.height else 0

    @property
    def n_users(self) -> int:
        return self.users.height


def _bucket_counts(train: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    train = train.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
    items = train.group_by("item_id").agg(
        pl.len().cast(pl.Int64).alias("n_rows"),
        pl.col("user_id").n_unique().cast(pl.Int64).alias("n_users"),
    )
    return items, history_counts(train)


def train_stats_of_buckets(buckets: Iterable[pl.DataFrame]) -> TrainStats:
    """TrainStats of a train table given as disjoint buckets of users (user_id, item_id).

    Distinct users per item add up across buckets only because no user is in two of them.
    """
    summed = PendingSum(("item_id",), ("n_rows", "n_users"))
    users = []
    for bucket in buckets:
        bucket_items, bucket_users = _bucket_counts(bucket)
        summed.add(bucket_items)
        users.append(bucket_users)
    items = summed.total()
    if items is None:
        items = pl.DataFrame(schema={"item_id": pl.String, "n_rows": pl.Int64, "n_users": pl.Int64})
    return TrainStats(
        items=items.sort("item_id"),
        users=pl.concat(users).sort("user_id")
        if users
        else pl.DataFrame(schema={"user_id": pl.String, "n_history": pl.Int64}),
    )


def train_stats(train: pl.DataFrame) -> TrainStats:
    """TrainStats of a whole train frame (user_id, item_id) in memory."""
    return train_stats_of_buckets([train])
