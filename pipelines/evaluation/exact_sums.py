"""Exact sums of float columns per group, added up bucket by bucket in bounded memory.

A finite float64 v is M·2^(E-53) with M = frexp mantissa·2^53, an integer below 2^53 in
magnitude. Grouping the values by (group, E) and summing the integers M, split into a high
(27-bit) and a low (26-bit) half so that int64 cannot overflow before 2^36 values, keeps
every sum exact. The mean is that exact sum divided by the count and rounded once, so it
does not depend on the order of the values nor on how they were split into buckets, and
what is kept between buckets is groups × distinct exponents rows, whatever the number of
values. (Spark jobs sum in DECIMAL(38, 18) instead, pipelines/exact_sum.py: a Spark column
expression, at the price of rounding every term to 1e-18.)

`float_sums` is O(n) over a bucket's n values (numpy frexp, one Polars group-by); `add_sums`
is O(state rows); `means_of_sums` loops in Python over the state rows only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

_LOW_BITS = 26
_LOW_MASK = (1 << _LOW_BITS) - 1
_STATE = ("column", "exponent")


def float_sums(frame: pl.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pl.DataFrame:
    """Exact partial sums of `values` per `keys`: columns *keys, column, exponent, high,
    low, count (see the module docstring). Raises ValueError on a null or non-finite value."""
    long = frame.unpivot(
        on=list(values), index=list(keys), variable_name="column", value_name="value"
    )
    v = long.get_column("value").cast(pl.Float64).to_numpy()
    if long.get_column("value").null_count() or not np.isfinite(v).all():
        raise ValueError(f"cannot sum null or non-finite values of {list(values)}")
    mantissa, exponent = np.frexp(v)
    m = (mantissa * 2.0**53).astype(np.int64)  # exact: the mantissa has 53 bits
    return (
        long.select(*keys, "column")
        .with_columns(
            pl.Series("exponent", exponent, dtype=pl.Int32),
            pl.Series("high", m >> _LOW_BITS, dtype=pl.Int64),
            pl.Series("low", m & _LOW_MASK, dtype=pl.Int64),
        )
        .group_by(*keys, *_STATE)
        .agg(pl.col("high").sum(), pl.col("low").sum(), pl.len().cast(pl.Int64).alias("count"))
    )


def add_sums(a: pl.DataFrame | None, b: pl.DataFrame) -> pl.DataFrame:
    """The `float_sums` of two disjoint sets of rows (a None is no rows yet)."""
    if a is None:
        return b
    keys = [c for c in b.columns if c not in ("high", "low", "count")]
    return pl.concat([a, b]).group_by(keys).agg(pl.col("high", "low", "count").sum())


def means_of_sums(sums: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The mean of every column per group, correctly rounded: columns *keys, column, value
    (Float64), n (Int64, the number of values)."""
    totals: dict[tuple, list[int]] = {}
    for row in sums.iter_rows(named=True):
        group = (*(row[k] for k in keys), row["column"])
        # An exact sum scaled by 2^(53 + 1100): every float64 exponent is above -1100.
        scaled = ((row["high"] << _LOW_BITS) + row["low"]) << (row["exponent"] + 1100)
        acc = totals.setdefault(group, [0, 0])
        acc[0] += scaled
        acc[1] += row["count"]
    rows = [
        (*group, total / (count << (53 + 1100)), count)
        for group, (total, count) in sorted(totals.items())
    ]
    return pl.DataFrame(
        rows,
        schema={
            **{k: sums.schema[k] for k in keys},
            "column": pl.String,
            "value": pl.Float64,
            "n": pl.Int64,
        },
        orient="row",
    )
