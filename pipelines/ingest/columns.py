"""Which source column holds which canonical field (user_id, item_id, ts, event_type, value).

``ingest.columns`` maps canonical names to source column names; for every canonical name it
does not map, the first default candidate present in the source is used: an exact match
first, then a case-insensitive one. user_id and item_id are required; ts, event_type and
value are optional (a delimited file without a ts column gets positional timestamps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.errors import InputFormatError

CANONICAL: tuple[str, ...] = ("user_id", "item_id", "ts", "event_type", "value")
REQUIRED: tuple[str, ...] = ("user_id", "item_id")
EVENT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userId", "uid"),
    "item_id": ("item_id", "item", "itemId", "movieId", "iid"),
    "ts": ("ts", "timestamp", "time", "datetime"),
    "event_type": ("event_type", "event", "type", "action"),
    "value": ("value", "rating", "score"),
}
TITLE_CANDIDATES: tuple[str, ...] = ("title", "movie_title", "name", "item_name", "product_title")
TEXT_CANDIDATES: tuple[str, ...] = (
    "text",
    "description",
    "genres",
    "genre",
    "class",
    "category",
    "categories",
    "tags",
)


@dataclass
class RawTable:
    """Rows of one input with named string fields, before any validation.

    df always has source (str), line (long, null for columnar input), raw (str) and
    pre_reason (str, a structural reason or null); `field(name)` is the string Column of a
    named source column. `columns` lists the source columns, or is None when every row
    carries its own keys (jsonl): then candidates are tried per row.
    """

    df: DataFrame
    columns: list[str] | None
    field: Callable[[str], Column]
    types: dict[str, str] = field(default_factory=dict)  # RecBole column types (name -> type)
    header: bool = False  # line 1 of every file is a header (data rows start at line 2)


def pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    """First candidate present in `columns`: exact match first, then case-insensitive."""
    for cand in candidates:
        if cand in columns:
            return cand
    lower = {c.lower(): c for c in reversed(columns)}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def resolve(
    columns: list[str] | None, mapping: dict[str, str], where: str
) -> dict[str, tuple[str, ...]]:
    """Canonical name -> the source column(s) to read (several: tried per row, jsonl only)."""
    unknown = sorted(set(mapping) - set(CANONICAL))
    if unknown:
        raise InputFormatError(
            f"ingest.columns has unknown key(s) {unknown}",
            hint=f"valid keys: {', '.join(CANONICAL)}",
        )
    out: dict[str, tuple[str, ...]] = {}
    for name in CANONICAL:
        if name in mapping:
            if columns is not None and mapping[name] not in columns:
                raise InputFormatError(
                    f"ingest.columns.{name} = '{mapping[name]}' is not a column of {where}",
                    hint=f"its columns are: {', '.join(columns)}",
                )
            out[name] = (mapping[name],)
        elif columns is None:
            out[name] = EVENT_CANDIDATES[name]
        else:
            found = pick(columns, EVENT_CANDIDATES[name])
            out[name] = (found,) if found else ()
    for name in REQUIRED:
        if not out[name]:
            raise InputFormatError(
                f"{where} has no {name} column (looked for {', '.join(EVENT_CANDIDATES[name])})",
                hint=f"set ingest.columns.{name}=<column>; its columns are: {', '.join(columns or [])}",
            )
    return out


def value_of(table: RawTable, names: tuple[str, ...]) -> Column:
    """The string value of the first of `names` that is non-null in the row (null if none)."""
    if not names:
        return F.lit(None).cast("string")
    cols = [table.field(n) for n in names]
    return cols[0] if len(cols) == 1 else F.coalesce(*cols)


FIELDS: tuple[str, ...] = (
    "source",
    "line",
    "raw",
    "pre_reason",
    "user_id",
    "item_id",
    "ts_raw",
    "ts_pos",
    "event_type",
    "value_raw",
)


def event_fields(table: RawTable, mapping: dict[str, str], where: str) -> DataFrame:
    """The canonical string fields of every row (FIELDS), ready for `typed_events`.

    Without a ts column (delimited files with a header only) the timestamp is positional:
    the data row's number within its file (line - 1), as seconds after the epoch.
    """
    cols = resolve(table.columns, mapping, where)
    ts_pos = None
    if not cols["ts"]:
        if not table.header:  # parquet: rows have no order to number
            raise InputFormatError(
                f"{where} has no ts column (looked for {', '.join(EVENT_CANDIDATES['ts'])})",
                hint=f"set ingest.columns.ts=<column>; its columns are: {', '.join(table.columns or [])}",
            )
        ts_pos = F.col("line") - 1
    return table.df.select(
        "source",
        "line",
        "raw",
        "pre_reason",
        value_of(table, cols["user_id"]).alias("user_id"),
        value_of(table, cols["item_id"]).alias("item_id"),
        value_of(table, cols["ts"]).alias("ts_raw"),
        (ts_pos if ts_pos is not None else F.lit(None)).cast("long").alias("ts_pos"),
        value_of(table, cols["event_type"]).alias("event_type"),
        value_of(table, cols["value"]).alias("value_raw"),
    )
