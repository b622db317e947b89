"""Canonical string fields -> typed events plus a `reason` column (null = accepted).

Rules (reasons.py has the precedence):

* user_id / item_id: surrounding ASCII whitespace trimmed; empty means missing.
* ts, positional (ts_pos set: sequences, delimited files without a ts column): ts_pos
  seconds after the epoch, never range-checked (the value is an order, not a time).
* ts, from text, by ``ingest.timestamp_unit``:
  - ``auto``: a decimal number x is seconds if |x| < 1e11, milliseconds if |x| < 1e14,
    else microseconds; any other string is ISO-8601 as Spark's timestamp cast reads it
    (``2024-01-02``, ``2024-01-02 03:04:05``, ``2024-01-02T03:04:05.123+02:00``, ``...Z``);
    without a zone it is read in the session time zone, which `get_spark` fixes to UTC.
  - ``s`` / ``ms`` / ``us``: the number in that unit (a non-number is unparsable).
  - ``iso``: ISO-8601 only.
  Fractions are rounded to the microsecond. The result must lie in [min_ts, max_ts).
* value: empty means null; else it must be a finite decimal number (``4``, ``-3.5``,
  ``1e3``; not ``NaN``, ``inf``, ``1d``).
* event_type: trimmed; empty means null.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.config import IngestConfig
from pipelines.errors import ConfigError
from pipelines.ingest import reasons

WHITESPACE = " \t\n\r\f\u000b"
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
UNIT_MICROS = {"s": 1e6, "ms": 1e3, "us": 1.0}
RAW_LIMIT = 1000
MAX_MICROS = 9.0e18  # beyond this a long overflows; such values are out of range anyway


def parse_bound(text: str, key: str) -> int:
    """An ISO-8601 bound from the config -> microseconds since the epoch (no zone = UTC)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"ingest.{key} = {text!r} is not an ISO-8601 timestamp",
            hint=f"write e.g. --set ingest.{key}=2000-01-01T00:00:00Z",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def clean(col: Column) -> Column:
    """Trimmed string; empty -> null."""
    return F.nullif(F.btrim(col, F.lit(WHITESPACE)), F.lit(""))


def _micros(unit: str) -> Column:
    """Microseconds (double) from the columns ts_text / ts_num / ts_is_num; null = unparsable."""
    number, is_number = F.col("ts_num"), F.col("ts_is_num")
    iso = F.unix_micros(F.col("ts_text").try_cast("timestamp")).cast("double")
    if unit == "auto":
        magnitude = F.abs(number)
        factor = (
            F.when(magnitude < 1e11, F.lit(1e6))
            .when(magnitude < 1e14, F.lit(1e3))
            .otherwise(F.lit(1.0))
        )
        return F.when(is_number, number * factor).otherwise(iso)
    if unit in UNIT_MICROS:
        return F.when(is_number, number * F.lit(UNIT_MICROS[unit]))
    if unit == "iso":
        return F.when(~is_number, iso)
    raise ConfigError(
        f"ingest.timestamp_unit = {unit!r} is not valid", hint="one of: auto, s, ms, us, iso"
    )


def _parsed(fields: DataFrame, timestamp_unit: str) -> DataFrame:
    """Cleaned ids, the value and its validity, the timestamp in micros (or the sequence
    position) and whether it parsed: the stacked projections before the reason."""
    carry = ["source", "line", "raw", "pre_reason", "ts_pos"]
    cleaned = fields.select(
        *carry,
        clean(F.col("user_id")).alias("user_id"),
        clean(F.col("item_id")).alias("item_id"),
        clean(F.col("ts_raw")).alias("ts_text"),
        clean(F.col("event_type")).alias("event_type"),
        clean(F.col("value_raw")).alias("value_text"),
    )
    ids = ["user_id", "item_id", "event_type"]
    numbers = cleaned.select(
        *carry,
        *ids,
        "ts_text",
        F.col("ts_text").rlike(NUMBER).alias("ts_is_num"),
        F.col("ts_text").try_cast("double").alias("ts_num"),
        "value_text",
        F.col("value_text").rlike(NUMBER).alias("value_is_num"),
        F.col("value_text").try_cast("double").alias("value"),
    )
    value = F.col("value")
    micros = numbers.select(
        *carry,
        *ids,
        "value",
        (
            F.col("value_text").isNotNull()
            & (~F.col("value_is_num") | F.isnan(value) | F.abs(value).eqNullSafe(float("inf")))
        ).alias("value_bad"),
        _micros(timestamp_unit).alias("micros_d"),
    )
    micros_d = F.col("micros_d")
    positional = F.col("ts_pos").isNotNull()
    return micros.select(
        *carry,
        *ids,
        "value",
        "value_bad",
        micros_d.isNull().alias("ts_unparsable"),
        F.when(positional, F.col("ts_pos") * 1_000_000)
        .when(F.abs(micros_d) < MAX_MICROS, F.round(micros_d).cast("long"))
        .alias("ts_us"),
    )


def type_events(fields: DataFrame, cfg: IngestConfig) -> DataFrame:
    """FIELDS -> source, line, raw (kept for rejected rows only), reason, and the typed
    event columns user_id, item_id, ts, event_type, value.

    Built as a few stacked projections so every intermediate is computed once per row
    (one flat expression would repeat the parsing in every place it is used, and grow
    past the size Spark compiles).
    """
    lo = parse_bound(cfg.min_ts, "min_ts")
    hi = parse_bound(cfg.max_ts, "max_ts")
    ts_micros = _parsed(fields, cfg.timestamp_unit)
    positional = F.col("ts_pos").isNotNull()
    ts_us = F.col("ts_us")
    reason = F.coalesce(
        F.col("pre_reason"),
        F.when(F.col("user_id").isNull(), F.lit(reasons.MISSING_USER)),
        F.when(F.col("item_id").isNull(), F.lit(reasons.MISSING_ITEM)),
        F.when(~positional & F.col("ts_unparsable"), F.lit(reasons.UNPARSABLE_TS)),
        F.when(
            ~positional & (ts_us.isNull() | (ts_us < lo) | (ts_us >= hi)),
            F.lit(reasons.TS_OUT_OF_RANGE),
        ),
        F.when(F.col("value_bad"), F.lit(reasons.NON_NUMERIC_VALUE)),
    )
    typed = ts_micros.select(
        "source",
        "line",
        "raw",
        reason.alias("reason"),
        "user_id",
        "item_id",
        F.timestamp_micros(ts_us).alias("ts"),
        "event_type",
        "value",
    )
    return typed.select(
        "source",
        "line",
        F.when(
            F.col("reason").isNotNull(),
            F.substring(F.make_valid_utf8(F.col("raw")), 1, RAW_LIMIT),
        ).alias("raw"),
        "reason",
        "user_id",
        "item_id",
        "ts",
        "event_type",
        "value",
    )
