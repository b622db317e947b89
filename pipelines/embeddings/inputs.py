"""What the item_embeddings stage embeds and what it may reuse (Polars, on the driver)."""

from __future__ import annotations

import polars as pl

from udfs.text_vectors import item_text, text_hash


def item_texts(items: pl.DataFrame, encoder_key: str) -> pl.DataFrame:
    """items -> (item_id, item_idx, text, text_hash) of the items that have a title or a text
    (udfs.text_vectors.item_text); the others get no row."""
    items = items.select("item_id", "item_idx", "title", "text")
    texts = [
        item_text(t, x)
        for t, x in zip(items["title"].to_list(), items["text"].to_list(), strict=True)
    ]
    hashes = [None if t is None else text_hash(t, encoder_key) for t in texts]
    return (
        items.select("item_id", pl.col("item_idx").cast(pl.Int32))
        .with_columns(
            pl.Series("text", texts, dtype=pl.String),
            pl.Series("text_hash", hashes, dtype=pl.String),
        )
        .filter(pl.col("text").is_not_null())
    )


def split_reusable(
    rows: pl.DataFrame, previous: pl.DataFrame | None, model: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """-> (rows of `previous` to keep: same item, same text_hash, same model, with today's
    item_idx; the rows of `rows` still to embed)."""
    if previous is None or previous.height == 0:
        return previous_empty(), rows
    kept = reusable_items(previous.lazy(), rows, model)
    return kept, rows.join(kept.select("item_id"), on="item_id", how="anti")


def reusable_items(table: pl.LazyFrame, rows: pl.DataFrame, model: str) -> pl.DataFrame:
    """The rows of a committed item_embeddings table (this run's or another's) that `rows`
    may keep: same item, same text_hash (the text and the encoder), same model; with
    today's item_idx (ingest may have renumbered the items)."""
    return (
        table.filter(pl.col("model") == model)
        .select("item_id", "text_hash", "embedding", "model")
        .join(rows.lazy().select("item_id", "item_idx", "text_hash"), on=["item_id", "text_hash"])
        .unique("item_id", keep="first", maintain_order=True)
        .select("item_id", "item_idx", "text_hash", "embedding", "model")
        .collect()
    )


def previous_empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "item_id": pl.String,
            "item_idx": pl.Int32,
            "text_hash": pl.String,
            "embedding": pl.List(pl.Float32),
            "model": pl.String,
        }
    )
