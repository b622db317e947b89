"""Dense integer indices for string ids: 0..n-1 in id order (byte-wise, = Python's str order).

Only the *distinct* ids are ranked, with one global row_number over them (a single sorted
task over the distinct ids, not over the events); the result is the same on every call and
on every recomputation, because the order is total (ids are unique).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def dense_index(ids: DataFrame, id_col: str, idx_col: str) -> DataFrame:
    """Distinct values of `id_col` (nulls dropped) with `idx_col` int32 0..n-1 by id order."""
    distinct = ids.select(id_col).where(F.col(id_col).isNotNull()).distinct()
    rank = F.row_number().over(Window.orderBy(F.col(id_col).asc())) - 1
    return distinct.select(id_col, rank.cast("int").alias(idx_col))
