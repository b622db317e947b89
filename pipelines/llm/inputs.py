"""The per-user inputs of the LLM stages, from run tables (Polars DataFrames) on the driver."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl

from pipelines.config import Config
from udfs.prompts import quote_item


def llm_seed(cfg: Config) -> int:
    return cfg.llm.seed or cfg.run.seed


def select_users(candidates: pl.DataFrame, cfg: Config) -> list[str]:
    """Users of `candidates`, sorted; under llm.max_users a seeded hash sample of them (the
    same users in both LLM stages, stable when other users come and go)."""
    users = candidates.get_column("user_id").unique().sort().to_list()
    cap = cfg.llm.max_users
    if cap and len(users) > cap:
        seed = llm_seed(cfg)

        def key(u: str) -> str:
            return hashlib.sha256(f"{seed}:{u}".encode()).hexdigest()

        users = sorted(sorted(users, key=key)[:cap])
    return users


def item_texts(items: pl.DataFrame, max_chars: int) -> pl.DataFrame:
    """item_id -> quoted (title and text, quoted and capped; null without a title)."""
    items = items.select("item_id", "title", "text")
    quoted = [
        quote_item(t, x, max_chars)
        for t, x in zip(items["title"].to_list(), items["text"].to_list(), strict=True)
    ]
    return items.select("item_id").with_columns(pl.Series("quoted", quoted, dtype=pl.String))


def histories(train: pl.DataFrame, users: list[str], n: int, texts: pl.DataFrame) -> pl.DataFrame:
    """Per user: n_events (train events), item_ids and quoted of the last n titled train
    items, oldest first (ties in time broken by item_id)."""
    train = train.select("user_id", "item_id", "ts").filter(pl.col("user_id").is_in(users))
    counts = train.group_by("user_id").agg(pl.len().alias("n_events"))
    recent = (
        train.join(texts, on="item_id", how="left")
        .filter(pl.col("quoted").is_not_null())
        .sort("user_id", "ts", "item_id")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("item_id").tail(n), pl.col("quoted").tail(n))
    )
    base = pl.DataFrame({"user_id": users}, schema={"user_id": pl.String})
    return (
        base.join(counts, on="user_id", how="left")
        .join(recent, on="user_id", how="left")
        .with_columns(
            pl.col("n_events").fill_null(0),
            pl.col("item_id").fill_null([]),
            pl.col("quoted").fill_null([]),
        )
    )


def score_fingerprints(rows: pl.DataFrame, model: str, settings: dict[str, Any]) -> pl.Series:
    """Per row of the llm_scores stage's inputs (user_id, summary, history, item_ids,
    candidates): the hash of everything that decides the user's scores: the summary, the
    quoted history, the candidates' ids and quoted text in order, the model, the prompt
    version and the scoring settings (scorer, batching, pair batch, dtype, device). A user's
    scores are computed apart from every other user's, so an equal hash means equal scores."""
    from udfs.prompts import PROMPT_VERSION

    head = [model, PROMPT_VERSION, sorted(settings.items())]
    cols = [rows[c].to_list() for c in ("summary", "history", "item_ids", "candidates")]
    hashes = [
        hashlib.sha256(
            json.dumps([*head, s, list(h or []), list(i), list(c)], default=str).encode()
        ).hexdigest()[:16]
        for s, h, i, c in zip(*cols, strict=True)
    ]
    return pl.Series("score_fingerprint", hashes, dtype=pl.String)


def with_shards(df: pl.DataFrame, shard_users: int) -> pl.DataFrame:
    """Shard id = position in user order // shard_users (the resume unit)."""
    return (
        df.sort("user_id")
        .with_row_index("_pos")
        .with_columns((pl.col("_pos") // max(1, shard_users)).cast(pl.Int32).alias("shard"))
        .drop("_pos")
    )
