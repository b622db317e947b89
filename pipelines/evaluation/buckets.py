"""Users in buckets: read a per-user table a slice of users at a time, in bounded memory.

Every evaluation metric is a function of each user's own rows (accuracy) or a sum over users
(item exposure, counts), so a table can be read one bucket of users at a time and the small
per-bucket results combined. A user's bucket is hash(user_id) mod n: every row of a user
falls in the same bucket, in every table. One streaming pass over the table writes each
bucket's rows to its own temporary Parquet file (the system's temp directory), and the buckets
are then read back one at a time: O(rows) reading whatever the number of buckets (filtering
the table once per bucket cost n passes, quadratic in the table's size at a fixed bucket
size), for a temporary copy of the selected columns on local disk.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

USER = "user_id"
_SEED = 0x5EED  # any fixed seed: the same user must land in the same bucket in every table


def n_buckets(rows: int, max_rows_in_memory: int) -> int:
    """How many buckets keep about `max_rows_in_memory` rows in each: ceil(rows / max), >= 1."""
    if max_rows_in_memory < 1:
        raise ValueError(f"max_rows_in_memory must be >= 1, got {max_rows_in_memory}")
    return max(1, math.ceil(rows / max_rows_in_memory))


def in_bucket(index: int, count: int) -> pl.Expr:
    """True for the rows whose user falls in bucket `index` of `count` (every row if count=1)."""
    if count == 1:
        return pl.lit(True)
    return _bucket_of(count) == index


def _bucket_of(count: int) -> pl.Expr:
    # Cast first: the same id must hash alike whatever string type a reader produced.
    return pl.col(USER).cast(pl.String).hash(_SEED) % count


@dataclass(frozen=True)
class Bucket:
    """The rows of one bucket of users, and how to cut other per-user frames the same way."""

    index: int
    count: int
    rows: pl.DataFrame

    def users_of(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of `frame` (with a user_id column) whose users are in this bucket."""
        return frame if self.count == 1 else frame.filter(in_bucket(self.index, self.count))


def read_buckets(frame: pl.LazyFrame | pl.DataFrame, count: int) -> Iterator[Bucket]:
    """Collect `frame` one bucket of users at a time (count=1: the whole frame once).

    A LazyFrame over Parquet files runs on the streaming engine, so the split itself holds
    only a morsel of the table; then one bucket's rows are in memory at a time, each bucket's
    rows in the frame's order.
    """
    lazy = frame.lazy()
    if count == 1:
        yield Bucket(0, 1, lazy.collect(engine="streaming"))
        return
    key = "_walkrank_bucket"
    with tempfile.TemporaryDirectory(prefix="walkrank-buckets-") as tmp:
        lazy.with_columns(_bucket_of(count).alias(key)).sink_parquet(
            pl.PartitionBy(tmp, key=key, include_key=False), mkdir=True
        )
        for index in range(count):
            files = sorted(Path(tmp).glob(f"{key}={index}/*.parquet"))
            rows = pl.read_parquet(files) if files else lazy.head(0).collect()
            yield Bucket(index, count, rows)
