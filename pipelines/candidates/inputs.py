"""What every candidate source receives, and the per-user top-k it ends with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class SourceInputs:
    """The inputs common to every source (a source's own tables come beside them)."""

    spark: Any  # SparkSession
    train: Any  # Spark DataFrame: the train table (events contract)
    users: Any  # Spark DataFrame[user_idx]: every user that gets candidates
    user_ids: Any  # Spark DataFrame[user_idx, user_id]
    seen: Any  # Spark DataFrame[user_idx, item_idx] distinct train pairs, or None (keep seen)
    n_items: int
    per_source: int  # the k of every source's per-user list
    # (table, columns) -> pyarrow.Table of a committed run table, for sources that build
    # driver-side arrays (CSR) rather than Spark plans.
    read_arrow: Callable[[str, list[str] | None], Any]
    # Every user of the run, sampled or not (run.user_sample): neighbours are named from it.
    all_user_ids: Any = None  # DataFrame[user_idx, user_id]; None: user_ids

    @property
    def every_user_id(self):  # -> DataFrame[user_idx, user_id]
        return self.user_ids if self.all_user_ids is None else self.all_user_ids


def top_per_user(scored, k: int, seen=None):
    """Drop seen pairs (anti-join), keep the k best per user; ties by item_idx (deterministic)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if seen is not None:
        scored = scored.join(seen, ["user_idx", "item_idx"], "left_anti")
    w = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx").asc())
    return (
        scored.withColumn("_r", F.row_number().over(w))
        .filter(F.col("_r") <= k)
        .drop("_r")
        .select("user_idx", "item_idx", F.col("score").cast("double").alias("score"))
    )
