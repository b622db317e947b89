"""Line-oriented inputs -> rows of string fields, each row keeping its file, line and raw text.

Delimited dialects (csv, tsv, RecBole atomic files, MovieLens ``::`` files) become a
`RawTable`; token sequences become canonical event fields directly (one row per item token).

* csv / tsv: header row required; fields parsed with Spark's ``from_csv`` (RFC 4180 double
  quotes: ``"a,b"`` is one field, ``""`` inside quotes is a quote). The field count is taken
  after removing whole quoted fields, so quoted separators do not count. A quoted field
  spanning lines is not supported: every physical line is a row.
* recbole: tab-separated, header ``name:type``, no quoting (RecBole reads it that way).
* movielens: ``::``-separated, no header, no quoting.
* A blank line has 0 fields (so it is quarantined as a wrong field count).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import InputFormatError
from pipelines.ingest import reasons
from pipelines.ingest.columns import RawTable
from pipelines.ingest.line_numbers import read_numbered_lines
from pipelines.ingest.typed_events import RAW_LIMIT


@dataclass(frozen=True)
class Dialect:
    sep: str
    quoting: bool  # RFC 4180 double quotes
    header: bool
    typed_header: bool = False  # RecBole `name:type` header


DIALECTS: dict[str, Dialect] = {
    "csv": Dialect(",", quoting=True, header=True),
    "tsv": Dialect("\t", quoting=True, header=True),
    "recbole": Dialect("\t", quoting=False, header=True, typed_header=True),
    "movielens": Dialect("::", quoting=False, header=False),
}
MOVIELENS_RATINGS = ["user_id", "item_id", "value", "ts"]  # ratings.dat: user::item::rating::ts
MOVIELENS_MOVIES = ["item_id", "title", "genres"]  # movies.dat: id::title::genre|genre
WHITESPACE = " \t\n\r\f\u000b"  # what Java's \\s matches


def _literal(sep: str) -> str:
    """A Java regex matching `sep` literally."""
    return r"\Q" + sep + r"\E"


def parse_header(line: str, dialect: Dialect) -> tuple[list[str], dict[str, str]]:
    """Column names (and RecBole types) of a header line."""
    if dialect.quoting:
        fields = next(csv.reader([line], delimiter=dialect.sep, quotechar='"'), [])
    else:
        fields = line.split(dialect.sep)
    names, types = [], {}
    for f in fields:
        name = f.strip()
        if dialect.typed_header and ":" in name:
            name, typ = name.rsplit(":", 1)
            types[name] = typ
        names.append(name)
    return names, types


def _split(value: Column, dialect: Dialect, n: int) -> tuple[Column, Column, Column]:
    """(parsed, field count, malformed quoting): parsed is a struct c0..c{n-1} (quoting) or an
    array of strings.

    The count is evaluated in a projection above the one that names `parsed` `_parsed`.
    """
    sep = _literal(dialect.sep)
    if dialect.quoting:
        # Drop whole quoted fields ("..." with "" escapes) so separators inside them don't count.
        unquoted = F.regexp_replace(value, f'(?<=^|{sep})"(?:[^"]|"")*"(?={sep}|$)', "")
        count = F.size(F.split(unquoted, sep, -1))
        # A field that still starts with a quote opened one that never closed properly (Spark's
        # parser would read it as a literal character and shift no fields: the row would fail
        # later for a field's content instead of for its structure).
        malformed = unquoted.rlike(f'(^|{sep})"')
        schema = ", ".join(f"`c{i}` STRING" for i in range(n))
        opts = {"sep": dialect.sep, "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
        parsed = F.from_csv(value, schema, opts)
    else:
        parsed = F.split(value, sep, -1)
        count = F.size(F.col("_parsed"))  # of the parsed column, so the split runs once
        malformed = F.lit(False)
    return parsed, F.when(value == "", F.lit(0)).otherwise(count), malformed


def _field(parsed: Column, dialect: Dialect, i: int) -> Column:
    if dialect.quoting:
        return parsed[f"c{i}"]
    return F.try_element_at(parsed, F.lit(i + 1))


def read_delimited(
    spark: SparkSession,
    paths: list[str],
    fmt: str,
    columns: list[str] | None = None,
    latin1_fallback: bool = False,
) -> RawTable:
    """A delimited text input as a RawTable (pre_reason: undecodable bytes, wrong field count).

    columns: names of a headerless dialect (MovieLens). latin1_fallback: decode lines that
    are not valid UTF-8 as ISO-8859-1 instead of quarantining them (MovieLens catalogs).
    """
    dialect = DIALECTS[fmt]
    lines = read_numbered_lines(spark, paths)
    df = lines.df
    types: dict[str, str] = {}
    if dialect.header:
        headers = {src: parse_header(first, dialect) for src, first in lines.first_lines.items()}
        if not headers:
            raise InputFormatError(
                f"{', '.join(paths)}: no header line (the input is empty)",
                hint=f"a {fmt} file starts with a header row naming its columns",
            )
        distinct = {tuple(names) for names, _ in headers.values()}
        if len(distinct) > 1:
            listing = "; ".join(f"{src}: {names}" for src, (names, _) in sorted(headers.items()))
            raise InputFormatError(
                f"the {fmt} files of one input have different headers: {listing}",
                hint="give files with one header, or ingest them separately",
            )
        names, types = next(iter(headers.values()))
        df = df.where(F.col("line") > 1)
    else:
        names = list(columns or [])
    n = len(names)
    value = F.col("value")
    bad_bytes = F.col("undecodable")
    if latin1_fallback:
        value = F.when(F.is_valid_utf8(value), value).otherwise(
            F.decode(value.cast("binary"), "ISO-8859-1")
        )
        bad_bytes = F.is_valid_utf8(F.col("value")) & F.col("value").contains("\ufffd")
    parsed, count, malformed = _split(F.col("value"), dialect, n)
    # Parse once per line (a separate projection), then pick the fields from the result.
    staged = (
        df.select("source", "line", value.alias("value"), bad_bytes.alias("undecodable"))
        .select("source", "line", "value", "undecodable", parsed.alias("_parsed"))
        .select("*", count.alias("_n"), malformed.alias("_malformed"))
    )
    n_fields = F.col("_n")
    pre_reason = (
        F.when(F.col("undecodable"), F.lit(reasons.UNDECODABLE))
        .when(F.col("_malformed"), F.lit(reasons.MALFORMED_QUOTING))
        .when(
            n_fields != n,
            F.concat(
                F.lit(f"{reasons.WRONG_FIELD_COUNT} (expected {n}, got "),
                n_fields.cast("string"),
                F.lit(")"),
            ),
        )
    )
    out = staged.select(
        "source",
        "line",
        F.col("value").alias("raw"),
        pre_reason.alias("pre_reason"),
        *[_field(F.col("_parsed"), dialect, i).alias(f"_f{i}") for i in range(n)],
    )
    index = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    return RawTable(
        out,
        names,
        lambda name: F.col(f"_f{index[name]}"),
        types=types,
        header=dialect.header,
    )


def read_sequences(spark: SparkSession, paths: list[str]) -> DataFrame:
    """`user item item ...` lines -> canonical event fields, one row per item token.

    ts_pos = the token's position in the line (1, 2, 3, ...). A blank line, or a user
    without items, is one row with reason 'empty sequence'; a line with undecodable bytes is
    one row with that reason. Tokens are split on ASCII whitespace. The raw text of an
    accepted token's row is `user item`.
    """
    df = read_numbered_lines(spark, paths).df
    # Each derived column gets its own projection, and the explode sees only scalars: Spark
    # evaluates the expressions beside a generator once per *output* row, so splitting the
    # line there would re-split a line of a million items a million times.
    tokens = df.select(
        "source",
        "line",
        "value",
        "undecodable",
        F.split(F.btrim(F.col("value"), F.lit(WHITESPACE)), r"\s+", -1).alias("_tokens"),
    )
    # A blank line splits into [""]: fewer than two tokens, like a user without items.
    ok = tokens.select("*", (~F.col("undecodable") & (F.size("_tokens") >= 2)).alias("_ok"))
    is_ok, toks = F.col("_ok"), F.col("_tokens")
    pre_reason = F.when(F.col("undecodable"), F.lit(reasons.UNDECODABLE)).when(
        ~is_ok, F.lit(reasons.EMPTY_SEQUENCE)
    )
    per_line = ok.select(
        "source",
        "line",
        # The whole line is carried only by a rejected line's single row (cut to RAW_LIMIT).
        F.when(~is_ok, F.substring(F.col("value"), 1, RAW_LIMIT)).alias("_bad_raw"),
        pre_reason.alias("pre_reason"),
        F.when(is_ok, toks.getItem(0)).alias("user_id"),
        F.when(is_ok, F.slice(toks, F.lit(2), F.size(toks) - 1))
        .otherwise(F.array(F.lit(None).cast("string")))
        .alias("_items"),
    )
    rows = per_line.select(
        "source",
        "line",
        "_bad_raw",
        "pre_reason",
        "user_id",
        F.posexplode("_items").alias("pos", "item_id"),
    )
    none = F.lit(None).cast("string")
    raw = F.coalesce(F.col("_bad_raw"), F.concat_ws(" ", "user_id", "item_id"))
    out = rows.select(
        "source",
        "line",
        raw.alias("raw"),
        "pre_reason",
        "user_id",
        "item_id",
        none.alias("ts_raw"),
        (F.col("pos") + 1).cast("long").alias("ts_pos"),
        none.alias("event_type"),
        none.alias("value_raw"),
    )
    return out
