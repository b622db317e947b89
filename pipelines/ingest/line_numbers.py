"""Exact 1-based line numbers for text files, computed without a single-task pass.

Spark's text source reads each file in blocks (splits of ``spark.sql.files.maxPartitionBytes``);
a block owns the lines that *start* inside it, in file order, and a task reads its blocks one
after the other. So a row's position inside its block is its ordinal inside the task
(``monotonically_increasing_id()`` minus ``spark_partition_id() << 33``) minus the ordinal of
the block's first row. One small aggregation counts the lines of every (file, block_start);
the driver turns those counts into per-block offsets (a few numbers per block) and a broadcast
join adds them back: ``line = offset_of_block + position_in_block + 1``.

The same aggregation returns the first line of every file, which the delimited readers use
as the header, so reading headers costs no extra pass. Every step is deterministic given the
file splits, so a recomputed partition gets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import InputFormatError

BOM = "\ufeff"


def source_path(uri: str) -> str:
    """`file:/a/b%20c` (how Spark names a file) -> `/a/b c`; other schemes stay URIs."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


def source_path_col(uri: Column) -> Column:
    """`source_path` as a Spark expression (for columnar inputs that are not numbered here)."""
    local = F.regexp_replace(uri, r"^file:(//)?(?=/)", "")
    # try_url_decode treats '+' as a space (form encoding); Spark's paths keep '+' literal.
    decoded = F.try_url_decode(F.regexp_replace(local, r"\+", "%2B"))
    return F.when(uri.startswith("file:"), F.coalesce(decoded, local)).otherwise(uri)


def undecodable(value: Column) -> Column:
    """True where the line is not valid UTF-8 or holds U+FFFD (a failed decode upstream)."""
    return ~F.is_valid_utf8(value) | value.contains("\ufffd")


@dataclass
class NumberedLines:
    """df: source (str), line (long, 1-based), value (str, raw bytes kept), undecodable (bool)."""

    df: DataFrame
    first_lines: dict[str, str]  # source -> first line of the file (BOM stripped)
    n_lines: dict[str, int]  # source -> number of lines


def read_numbered_lines(spark: SparkSession, paths: list[str]) -> NumberedLines:
    """Read text files line by line with exact per-file line numbers (one small extra job)."""
    try:
        text = spark.read.text(paths)
    except Exception as exc:  # AnalysisException: path does not exist, ...
        raise InputFormatError(f"cannot read {paths}: {exc}".splitlines()[0]) from None
    ordinal = F.monotonically_increasing_id() - F.shiftleft(F.spark_partition_id().cast("long"), 33)
    raw = text.select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        ordinal.alias("_ord"),
    )
    stats = (
        raw.groupBy("_file", "_block")
        .agg(
            F.min("_ord").alias("first"),
            F.count(F.lit(1)).alias("n"),
            F.min_by(F.when(F.col("_block") == 0, F.col("value")), F.col("_ord")).alias("head"),
        )
        .collect()
    )
    by_file: dict[str, list] = {}
    for row in stats:
        by_file.setdefault(row["_file"], []).append(row)
    offsets: list[tuple[str, int, int, str]] = []
    first_lines: dict[str, str] = {}
    n_lines: dict[str, int] = {}
    for file, blocks in by_file.items():
        src = source_path(file)
        seen = 0
        for b in sorted(blocks, key=lambda r: r["_block"]):
            # line = seen + (ord - first) + 1 = ord + delta
            offsets.append((file, b["_block"], seen - b["first"] + 1, src))
            if b["_block"] == 0 and b["head"] is not None:
                first_lines[src] = b["head"].removeprefix(BOM)
            seen += b["n"]
        n_lines[src] = seen
    schema = T.StructType(
        [
            T.StructField("_file", T.StringType()),
            T.StructField("_block", T.LongType()),
            T.StructField("_delta", T.LongType()),
            T.StructField("source", T.StringType()),
        ]
    )
    offsets_df = spark.createDataFrame(offsets, schema)
    numbered = raw.join(F.broadcast(offsets_df), ["_file", "_block"])
    line = F.col("_ord") + F.col("_delta")
    value = F.col("value")
    df = numbered.select(
        "source",
        line.alias("line"),
        # A UTF-8 byte order mark is part of no field; only line 1 can carry it. substr keeps
        # the other bytes as they are (a regex would turn invalid bytes into U+FFFD).
        F.when((line == 1) & value.startswith(BOM), value.substr(F.lit(2), F.lit(2**31 - 1)))
        .otherwise(value)
        .alias("value"),
        undecodable(value).alias("undecodable"),
    )
    return NumberedLines(df, first_lines, n_lines)
