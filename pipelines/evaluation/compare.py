"""Two runs' metrics side by side: `walkrank compare RUN_A RUN_B`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import tableio

KEYS = ["table", "metric", "k", "segment"]


def compare_metrics(run_a: str | Path, run_b: str | Path) -> pl.DataFrame:
    """One row per (table, metric, k, segment) of either run: a, b, delta = b - a and
    rel_delta = delta / |a| (null where a is 0 or either side is missing)."""
    a = tableio.read_polars(run_a, "metrics").select(*KEYS, pl.col("value").alias("a"))
    b = tableio.read_polars(run_b, "metrics").select(*KEYS, pl.col("value").alias("b"))
    both = a.join(b, on=KEYS, how="full", coalesce=True)
    return (
        both.with_columns(delta=pl.col("b") - pl.col("a"))
        .with_columns(rel_delta=pl.when(pl.col("a") != 0).then(pl.col("delta") / pl.col("a").abs()))
        .sort(KEYS)
    )
