"""Item catalogs: one row of (item_id, title, text) per item, plus quarantined catalog rows.

Formats (by extension): MovieLens ``movies.dat`` (``id::title::genre|genre``; lines that are
not valid UTF-8 are decoded as ISO-8859-1, the encoding of the real MovieLens files; genres
become ``Animation, Comedy``), RecBole ``.item`` (title from a title-like column, text from
every other token / token_seq column as ``name: value; ...``), and csv / tsv / jsonl /
parquet (title and text from title-like and text-like columns, see columns.py).

A catalog row is quarantined for undecodable bytes, a wrong field count, a missing item id,
or a duplicate item id (the row with the lowest (source, line) wins; the others are
quarantined). Catalog rows are not events: they never count in rows_in.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.config import IngestConfig
from pipelines.ingest import reasons
from pipelines.ingest.columns import (
    EVENT_CANDIDATES,
    TEXT_CANDIDATES,
    TITLE_CANDIDATES,
    RawTable,
    pick,
    value_of,
)
from pipelines.ingest.formats import catalog_format
from pipelines.ingest.json_parquet import read_jsonl, read_parquet
from pipelines.ingest.text_readers import MOVIELENS_MOVIES, read_delimited
from pipelines.ingest.typed_events import RAW_LIMIT, clean

TEXT_TYPES = ("token", "token_seq")


def _raw_table(spark: SparkSession, path: str, fmt: str) -> RawTable:
    if fmt == "movielens":
        return read_delimited(spark, [path], fmt, columns=MOVIELENS_MOVIES, latin1_fallback=True)
    if fmt in ("recbole", "csv", "tsv"):
        return read_delimited(spark, [path], fmt)
    if fmt == "jsonl":
        return read_jsonl(spark, [path])
    return read_parquet(spark, [path])


def _text(table: RawTable, names: list[str], fmt: str) -> Column:
    if not names:
        return F.lit(None).cast("string")
    if len(names) == 1:
        text = clean(table.field(names[0]))
        if fmt == "movielens":
            text = F.regexp_replace(text, r"\|", ", ")
        return text
    parts = [
        F.when(clean(table.field(n)).isNotNull(), F.concat(F.lit(f"{n}: "), clean(table.field(n))))
        for n in names
    ]
    joined = F.concat_ws("; ", *parts)
    return F.when(joined != "", joined)


def _catalog_rows(spark: SparkSession, path: str, cfg: IngestConfig) -> DataFrame:
    fmt = catalog_format(path)
    table = _raw_table(spark, path, fmt)
    cols = table.columns
    id_names: tuple[str, ...]
    if "item_id" in cfg.columns and (cols is None or cfg.columns["item_id"] in cols):
        id_names = (cfg.columns["item_id"],)
    elif cols is None:
        id_names = EVENT_CANDIDATES["item_id"]
    else:
        found = pick(cols, EVENT_CANDIDATES["item_id"]) or (cols[0] if cols else None)
        id_names = (found,) if found else ()
    if cols is None:
        title_names: tuple[str, ...] = TITLE_CANDIDATES
        text = value_of(table, TEXT_CANDIDATES)
        text = F.when(clean(text).isNotNull(), clean(text))
    else:
        title = pick(cols, TITLE_CANDIDATES)
        title_names = (title,) if title else ()
        rest = [c for c in cols if c not in (*id_names, title)]
        if fmt == "recbole":
            text_names = [c for c in rest if table.types.get(c, "token") in TEXT_TYPES]
        else:
            text_names = [c for c in rest if c in TEXT_CANDIDATES]
        text = _text(table, text_names, fmt)
    item = clean(value_of(table, id_names))
    reason = F.coalesce(F.col("pre_reason"), F.when(item.isNull(), F.lit(reasons.MISSING_ITEM)))
    rows = table.df.select(
        "source",
        "line",
        "raw",
        reason.alias("reason"),
        item.alias("item_id"),
        clean(value_of(table, title_names)).alias("title"),
        text.alias("text"),
    )
    return rows


def read_catalogs(spark: SparkSession, paths: list[str], cfg: IngestConfig) -> DataFrame:
    """Every row of the catalog files: source, line, reason (null = accepted), raw, item_id,
    title, text. Accepted rows have distinct item ids."""
    rows = _catalog_rows(spark, paths[0], cfg)
    for path in paths[1:]:
        rows = rows.unionByName(_catalog_rows(spark, path, cfg))
    # Accepted rows first, then file order: the first accepted row of an item id wins.
    first = Window.partitionBy("item_id").orderBy(
        F.col("reason").isNotNull(), "source", "line", "title", "text"
    )
    ranked = rows.select(
        "*",
        F.when(F.col("reason").isNull(), F.row_number().over(first)).alias("_rank"),
    )
    return ranked.select(
        "source",
        "line",
        F.coalesce(
            F.col("reason"),
            F.when(F.col("_rank") > 1, F.lit(reasons.DUPLICATE_CATALOG_ITEM)),
        ).alias("reason"),
        "raw",
        "item_id",
        "title",
        "text",
    )


def catalog_quarantine(rows: DataFrame) -> DataFrame:
    """The rejected catalog rows in the QUARANTINE layout."""
    return rows.where(F.col("reason").isNotNull()).select(
        "source",
        "line",
        F.substring(F.make_valid_utf8(F.col("raw")), 1, RAW_LIMIT).alias("raw"),
        "reason",
    )
