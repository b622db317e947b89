"""summary_embeddings (Ray): the item encoder's vector of each user's LLM summary.

The user side of the summary-affinity feature (rank.summary_feature): the same encoder and
settings as item_embeddings (embeddings.*), so a summary and an item title share one space.
Users without a summary (not sampled, short history, an error row) get no row. Incremental
like item_embeddings: a row whose text_hash (the summary and the encoder) and model are
unchanged is kept, from the run's own committed table or another run's (reuse.run).
"""

from __future__ import annotations

import polars as pl

from pipelines.config import Config
from pipelines.stage import Stage, StageContext
from schemas.tables import SUMMARY_EMBEDDINGS

SCHEMA = dict(pl.from_arrow(SUMMARY_EMBEDDINGS.full_schema.empty_table()).schema)


def summary_feature_used(cfg: Config) -> str | None:
    """None when the learned ranker takes the summary-affinity feature, else why not."""
    if not cfg.rank.summary_feature:
        return "rank.summary_feature = false"
    if not cfg.llm.enabled:
        return "llm.enabled = false (no summaries)"
    if not cfg.embeddings.enabled:
        return "embeddings.enabled = false"
    if cfg.rank.method != "learned" or cfg.eval.target == "valid":
        return "no learned ranker in this run (rank.method = fusion or eval.target = valid)"
    return None


def summary_texts(summaries: pl.DataFrame, encoder_key: str) -> pl.DataFrame:
    """user_summaries -> (user_id, text, text_hash) of the users with a non-empty summary."""
    from udfs.text_vectors import text_hash

    rows = summaries
    if "error" in rows.columns:
        rows = rows.filter(pl.col("error").is_null())
    rows = rows.select("user_id", pl.col("summary").str.strip_chars().alias("text")).filter(
        pl.col("text").is_not_null() & (pl.col("text") != "")
    )
    return rows.with_columns(
        pl.Series(
            "text_hash", [text_hash(t, encoder_key) for t in rows["text"].to_list()], pl.String
        )
    )


def reusable_summaries(table: pl.LazyFrame, rows: pl.DataFrame, model: str) -> pl.DataFrame:
    """The rows of a committed summary_embeddings table (this run's or another's) that `rows`
    may keep: same user, same text_hash (the summary and the encoder), same model."""
    return (
        table.filter(pl.col("model") == model)
        .join(rows.lazy().select("user_id", "text_hash"), on=["user_id", "text_hash"], how="semi")
        .unique("user_id", keep="first", maintain_order=True)
        .collect()
    )


def run(ctx: StageContext) -> None:
    from pipelines.embeddings.encoder import encoder_key, encoder_name
    from pipelines.previous_run import reuse_rows

    ecfg = ctx.config.embeddings
    if not ecfg.enabled:
        ctx.write("summary_embeddings", pl.DataFrame(schema=SCHEMA), extra={"disabled": True})
        return
    name = encoder_name(ecfg.model)
    rows = summary_texts(
        ctx.read_polars("user_summaries"),
        encoder_key(name, ecfg.max_length, ecfg.dtype, ecfg.batch_size),
    )
    kept, todo, reuse = reuse_rows(
        ctx.run_dir, "summary_embeddings", ctx.config, rows,
        lambda table, left: reusable_summaries(table, left, name), "user_id", SCHEMA,
        nested=ctx.label, log=ctx.log,
    )  # fmt: skip
    ctx.log(f"{todo.height} summaries to embed, {reuse.describe()}")
    from pipelines.embeddings.ray_exec import embed_rows

    new, stats = embed_rows(ctx.config, todo, "user_id", ctx.stage.name, ctx.log, SCHEMA)
    table = pl.concat([kept, new]).sort("user_id")
    ctx.write(
        "summary_embeddings",
        table,
        extra={**stats, **reuse.extra(new.height), "model": name, "embedded": new.height},
    )


STAGE = Stage(
    name="summary_embeddings",
    fn=run,
    inputs=("user_summaries",),
    outputs=("summary_embeddings",),
    config_keys=("embeddings",),
    skip_reason=summary_feature_used,
    engine="ray",
    description="sentence-encoder embeddings of the users' LLM summaries on Ray actors",
)
