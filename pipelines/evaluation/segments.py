"""User segments of the offline evaluation.

Two independent segmentations, reported next to `all` (every evaluated user):

- history length = number of train events (rows, not distinct items) of the user:
  `hist_le5` (<= 5, including users absent from train), `hist_6_20` (6..20),
  `hist_gt20` (> 20);
- popularity of the held-out item: `pop_head` / `pop_tail`. A user belongs to a
  popularity segment when at least one of their relevant items is in it, and is
  scored there against that subset of their relevant items only (see `head_items_of_counts`).
"""

from __future__ import annotations

import polars as pl

SEGMENT_ALL = "all"
HIST_LE5 = "hist_le5"
HIST_6_20 = "hist_6_20"
HIST_GT20 = "hist_gt20"
POP_HEAD = "pop_head"
POP_TAIL = "pop_tail"

# Display order of the segments (reports); the metrics table itself is sorted by name.
SEGMENT_ORDER: tuple[str, ...] = (SEGMENT_ALL, HIST_LE5, HIST_6_20, HIST_GT20, POP_HEAD, POP_TAIL)

# Share of all train interactions that the head items may hold at most.
HEAD_SHARE_NUM, HEAD_SHARE_DEN = 1, 5  # 20 %, kept as a fraction to compare integers exactly


def history_counts(train: pl.DataFrame) -> pl.DataFrame:
    """Train rows per train user: columns user_id, n_history (Int64)."""
    return train.group_by("user_id").agg(pl.len().cast(pl.Int64).alias("n_history"))


def history_length_of_counts(users: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """Number of train events per user of `users`, from precomputed `history_counts`
    (user_id, n_history): columns user_id, n_history (Int64).

    n_history(u) = |{train rows with user_id = u}|; 0 for users absent from train.
    """
    return (
        users.select("user_id")
        .join(counts.select("user_id", "n_history"), on="user_id", how="left")
        .with_columns(pl.col("n_history").fill_null(0))
    )


def history_segment() -> pl.Expr:
    """History-length segment of a user from the `n_history` column.

    hist_le5 if n <= 5, hist_6_20 if 6 <= n <= 20, hist_gt20 if n > 20
    """
    n = pl.col("n_history")
    return (
        pl.when(n <= 5)
        .then(pl.lit(HIST_LE5))
        .when(n <= 20)
        .then(pl.lit(HIST_6_20))
        .otherwise(pl.lit(HIST_GT20))
    )


def history_segments_of_counts(users: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """Columns user_id, segment: the history-length segment of every user of `users`, from
    precomputed `history_counts` (user_id, n_history)."""
    return history_length_of_counts(users, counts).select(
        "user_id", history_segment().alias("segment")
    )


def head_items_of_counts(counts: pl.DataFrame) -> pl.DataFrame:
    """The popular ("head") items of train, from the train rows per item (item_id, n_rows),
    e.g. TrainStats.items: column item_id.

    Items are sorted by train interaction count c_i (rows) descending, ties by
    item_id ascending; the head is the longest prefix whose cumulative count stays
    <= 20 % of all train interactions, and at least the first item when train is
    non-empty. Every other item, including items absent from train, is tail.
    """
    total = int(counts.get_column("n_rows").sum()) if counts.height else 0
    if total == 0:
        return pl.DataFrame(schema={"item_id": pl.String})
    ranked = (
        counts.select("item_id", pl.col("n_rows").alias("count"))
        .sort(["count", "item_id"], descending=[True, False])
        .with_columns(pl.col("count").cum_sum().alias("cum_count"))
    )
    # Cumulative counts only grow, so filtering equals "take while"; the first row is
    # kept unconditionally so one very popular item still forms a head.
    is_head = (pl.col("cum_count") * HEAD_SHARE_DEN <= total * HEAD_SHARE_NUM) | (
        pl.int_range(pl.len()) == 0
    )
    return ranked.filter(is_head).select("item_id")


def split_relevant_by_popularity(
    relevant: pl.DataFrame, head: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(head, tail) subsets of the relevant (user_id, item_id) pairs."""
    return (
        relevant.join(head, on="item_id", how="semi"),
        relevant.join(head, on="item_id", how="anti"),
    )
