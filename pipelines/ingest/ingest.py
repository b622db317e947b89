"""run_ingest: raw events (+ item catalog) -> events, items, quarantine and counts.

Flow: resolve the format and input files -> string fields per row (with file, line and raw
text) -> typed rows with a reason (null = accepted), cached -> accepted rows deduplicated on
(user_id, item_id, ts, event_type, value) -> dense user/item indices -> events, items.

Caching: the typed rows are cached while the counts are taken (one read of the input, plus
one small job that numbers the lines); events, items and quarantine are returned persisted
and materialized, so the caller's writes and counts do not read the input again. The
intermediate caches are released before returning; `IngestResult.unpersist()` releases the
three results once the caller has written them.

Counts: rows_in, rows_quarantined (one aggregation by reason), duplicates_collapsed (accepted
rows beyond the first of each exact duplicate group) and rows_accepted (rows of events) are
each counted; rows_in = rows_accepted + rows_quarantined + duplicates_collapsed is then checked,
not assumed (event rows only; catalog rows are counted apart as catalog_rows_in /
catalog_rows_quarantined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.config import IngestConfig
from pipelines.ingest import reasons
from pipelines.ingest.catalog import catalog_quarantine, read_catalogs
from pipelines.ingest.columns import event_fields
from pipelines.ingest.dense_ids import dense_index
from pipelines.ingest.formats import dataset_paths, find_catalogs, input_files, resolve_format
from pipelines.ingest.json_parquet import read_jsonl, read_parquet
from pipelines.ingest.text_readers import MOVIELENS_RATINGS, read_delimited, read_sequences
from pipelines.ingest.typed_events import type_events
from schemas.tables import EVENTS, ITEMS, QUARANTINE

DEDUP_KEY = ["user_id", "item_id", "ts", "event_type", "value"]


@dataclass
class IngestResult:
    events: DataFrame  # EVENTS contract columns, in contract order
    items: DataFrame  # ITEMS contract
    quarantine: DataFrame  # QUARANTINE contract (event and catalog rows)
    counts: dict[str, int] = field(default_factory=dict)
    format: str = ""  # the resolved format
    catalogs: list[str] = field(default_factory=list)  # catalog files used (given or found)

    def unpersist(self) -> None:
        """Release the cached events, items and quarantine (once the caller has written them)."""
        for df in (self.events, self.items, self.quarantine):
            df.unpersist()


def _fields(spark: SparkSession, fmt: str, files: list[str], cfg: IngestConfig) -> DataFrame:
    """Canonical string fields of every input row (columns.FIELDS)."""
    where = ", ".join(files)
    if fmt == "sequences":
        return read_sequences(spark, files)
    if fmt == "movielens":  # positional: ingest.columns does not apply
        table = read_delimited(spark, files, fmt, columns=MOVIELENS_RATINGS)
        return event_fields(table, {}, where)
    if fmt in ("csv", "tsv", "recbole"):
        table = read_delimited(spark, files, fmt)
    elif fmt == "jsonl":
        table = read_jsonl(spark, files)
    else:
        table = read_parquet(spark, files)
    return event_fields(table, dict(cfg.columns), where)


def _conform(df: DataFrame, contract) -> DataFrame:
    """Exactly the contract's columns, in order, cast to its Spark types."""
    return df.select(
        *[F.col(f.name).cast(f.dataType).alias(f.name) for f in contract.spark_type().fields]
    )


def _reason_counts(rows: DataFrame, keys: tuple[str, ...], prefix: str) -> tuple[int, int, dict]:
    """(rows, rows with a reason, {prefix+key: n}) from one aggregation over `rows`."""
    per_reason = rows.groupBy("reason").count().collect()
    counts = {f"{prefix}{k}": 0 for k in keys}
    total = rejected = 0
    for r in per_reason:
        total += r["count"]
        if r["reason"] is not None:
            rejected += r["count"]
            key = f"{prefix}{reasons.reason_key(r['reason'])}"
            counts[key] = counts.get(key, 0) + r["count"]
    return total, rejected, counts


def _read_catalog(
    spark: SparkSession, paths: list[str], cfg: IngestConfig
) -> tuple[DataFrame | None, int, int, dict]:
    """(catalog rows, cached; rows in; rows quarantined; {reason key: n}), one aggregation;
    (None, 0, 0, zero counts) without a catalog, so the counts keep the same keys."""
    if not paths:
        return None, 0, 0, {f"catalog_quarantine_{k}": 0 for k in reasons.CATALOG_REASON_KEYS}
    rows = read_catalogs(spark, paths, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    return (rows, *_reason_counts(rows, reasons.CATALOG_REASON_KEYS, "catalog_quarantine_"))


def _items_and_quarantine(
    item_index: DataFrame, events: DataFrame, typed: DataFrame, catalog_rows: DataFrame | None
) -> tuple[DataFrame, int, DataFrame]:
    """(items, its row count, quarantine), both tables cached and materialized: the caller's
    writes then do not read the input again. Items carry their popularity in events and the
    catalog's title and text (null without a catalog); quarantine holds event and catalog
    rows."""
    popularity = events.groupBy("item_id").agg(F.count(F.lit(1)).alias("popularity"))
    items = item_index.join(popularity, "item_id", "left").fillna(0, subset=["popularity"])
    quarantine = typed.where(F.col("reason").isNotNull()).select(*QUARANTINE.columns)
    if catalog_rows is not None:
        catalog_items = catalog_rows.where(F.col("reason").isNull())
        items = items.join(catalog_items.select("item_id", "title", "text"), "item_id", "left")
        quarantine = quarantine.unionByName(catalog_quarantine(catalog_rows))
    else:
        items = items.select("*", *[F.lit(None).cast("string").alias(c) for c in ("title", "text")])
    items = _conform(items, ITEMS).persist(StorageLevel.MEMORY_AND_DISK)
    n_items = items.count()
    quarantine = _conform(quarantine, QUARANTINE).persist(StorageLevel.MEMORY_AND_DISK)
    quarantine.count()
    return items, n_items, quarantine


def run_ingest(spark: SparkSession, cfg: IngestConfig) -> IngestResult:
    """Validate, deduplicate and index the events of `cfg.input` (see the module docstring)."""
    events_path, items_path = dataset_paths(cfg.input, cfg.items)
    fmt = resolve_format(events_path, cfg.format)
    files = input_files(events_path, fmt)
    typed = type_events(_fields(spark, fmt, files, cfg), cfg).persist(StorageLevel.MEMORY_AND_DISK)
    rows_in, rows_quarantined, reason_counts = _reason_counts(
        typed, reasons.EVENT_REASON_KEYS, "quarantine_"
    )

    catalog_paths = find_catalogs(items_path, fmt, files)
    catalog_rows, cat_in, cat_quarantined, cat_counts = _read_catalog(spark, catalog_paths, cfg)

    # Indices from the distinct ids of the accepted rows (the same ids as after dedup).
    accepted = typed.where(F.col("reason").isNull()).select(*DEDUP_KEY)
    user_index = dense_index(accepted, "user_id", "user_idx")
    item_ids = accepted.select("item_id")
    if catalog_rows is not None:
        item_ids = item_ids.unionByName(
            catalog_rows.where(F.col("reason").isNull()).select("item_id")
        )
    # Cached (small) while events are built, so that items does not rank the ids again.
    item_index = dense_index(item_ids, "item_id", "item_idx").persist()

    # Counted, not derived: rows beyond the first of each exact duplicate group.
    duplicates = (
        accepted.groupBy(*DEDUP_KEY)
        .count()
        .where(F.col("count") > 1)
        .agg(F.sum(F.col("count") - 1).alias("n"))
        .first()["n"]
        or 0
    )
    deduped = accepted.dropDuplicates(DEDUP_KEY)
    events = _conform(
        deduped.join(user_index, "user_id").join(item_index, "item_id"), EVENTS
    ).persist(StorageLevel.MEMORY_AND_DISK)
    # One pass fills the cache and counts; user_idx is dense, so max + 1 users.
    sizes = events.agg(F.count(F.lit(1)).alias("n"), F.max("user_idx").alias("last")).first()
    rows_accepted = sizes["n"]
    n_users = 0 if sizes["last"] is None else sizes["last"] + 1

    items, n_items, quarantine = _items_and_quarantine(item_index, events, typed, catalog_rows)

    counts = {
        "rows_in": rows_in,
        "rows_accepted": rows_accepted,
        "rows_quarantined": rows_quarantined,
        "duplicates_collapsed": int(duplicates),
        **reason_counts,
        "users": n_users,
        "items": n_items,
        "catalog_rows_in": cat_in,
        "catalog_rows_quarantined": cat_quarantined,
        **cat_counts,
    }
    if rows_in != rows_accepted + rows_quarantined + duplicates:
        raise RuntimeError(
            f"row conservation broken: rows_in {rows_in:,} != accepted {rows_accepted:,} + "
            f"quarantined {rows_quarantined:,} + duplicates {duplicates:,}"
        )
    for df in (typed, catalog_rows, item_index):
        if df is not None:
            df.unpersist()
    return IngestResult(events, items, quarantine, counts, fmt, catalog_paths)
