"""JSON lines and Parquet inputs -> RawTable (rows of named string fields).

* jsonl: every line is parsed on its own with ``from_json`` into a string map, so a
  malformed line (not one JSON object) is quarantined with its line number. Non-string JSON
  values arrive as their JSON text (``4.5``, ``true``); keys are matched per row (the first
  default candidate present in the object wins), exactly as named (case-sensitive).
* parquet (file or directory, hive partitions included): columns are matched by name like a
  csv header; values are cast to strings (timestamps as ISO-8601 in UTC) and typed again by
  the same rules as text. Parquet rows have no line number (null); raw is the row as JSON.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import InputFormatError
from pipelines.ingest import reasons
from pipelines.ingest.columns import RawTable
from pipelines.ingest.line_numbers import read_numbered_lines, source_path_col

ISO_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"


def read_jsonl(spark: SparkSession, paths: list[str]) -> RawTable:
    df = read_numbered_lines(spark, paths).df
    obj = F.from_json(F.col("value"), "map<string,string>", {"mode": "PERMISSIVE"})
    pre_reason = F.when(F.col("undecodable"), F.lit(reasons.UNDECODABLE)).when(
        obj.isNull(), F.lit(reasons.MALFORMED_JSON)
    )
    out = df.select(
        "source",
        "line",
        F.col("value").alias("raw"),
        pre_reason.alias("pre_reason"),
        obj.alias("_obj"),
    )
    return RawTable(out, None, lambda key: F.try_element_at(F.col("_obj"), F.lit(key)))


def _as_string(field: T.StructField):
    col = F.col(f"`{field.name}`")
    if isinstance(field.dataType, T.TimestampType | T.TimestampNTZType):
        return F.date_format(
            col, ISO_FORMAT if isinstance(field.dataType, T.TimestampType) else ISO_FORMAT[:-3]
        )
    if isinstance(field.dataType, T.StringType):
        return col
    if isinstance(field.dataType, T.ArrayType | T.MapType | T.StructType):
        return F.to_json(col)
    return col.cast("string")


def read_parquet(spark: SparkSession, paths: list[str]) -> RawTable:
    try:
        df = spark.read.parquet(*paths)
    except Exception as exc:  # AnalysisException: not parquet, no files, ...
        raise InputFormatError(
            f"cannot read {', '.join(paths)} as parquet: {str(exc).splitlines()[0]}",
            hint="check the path, or set ingest.format to the file's real format",
        ) from None
    names = df.columns
    fields = {f.name: f for f in df.schema.fields}
    out = df.select(
        source_path_col(F.col("_metadata.file_path")).alias("source"),
        F.lit(None).cast("long").alias("line"),
        F.to_json(F.struct(*[F.col(f"`{n}`") for n in names])).alias("raw"),
        F.lit(None).cast("string").alias("pre_reason"),
        *[_as_string(fields[n]).alias(f"_f{i}") for i, n in enumerate(names)],
    )
    index = {n: i for i, n in enumerate(names)}
    return RawTable(out, names, lambda name: F.col(f"_f{index[name]}"))
