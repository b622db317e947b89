"""summaries (Ray): offline LLM preference profiles of users -> user_summaries.

For each selected user with at least summaries.min_history train events and at least one
titled item: a chat prompt from the last summaries.history titled items, batched greedy
generation on Ray actors. Incremental: a user whose history_fingerprint (history ids and
quoted text, model, prompt version, generation settings) matches the committed table keeps the
old summary. Resumable shards.
"""

from __future__ import annotations

import polars as pl

from pipelines.config import Config
from pipelines.stage import Stage, StageContext
from pipelines.stages.llm_scores import llm_scores_used
from pipelines.stages.summary_embeddings import summary_feature_used
from schemas.tables import USER_SUMMARIES
from udfs.prompts import PROMPT_VERSION, history_fingerprint

# The table's columns, optional ones included, as Polars types (schemas/ is the truth).
SCHEMA = dict(pl.from_arrow(USER_SUMMARIES.full_schema.empty_table()).schema)


def summaries_used(cfg: Config) -> str | None:
    """None when a stage reads user_summaries: the LLM scores' prompts or the summary feature."""
    why = llm_scores_used(cfg)
    return None if why is None or summary_feature_used(cfg) is None else why


def _previous(ctx: StageContext, model: str) -> pl.DataFrame | None:
    from pipelines import tableio

    if not tableio.is_committed(ctx.run_dir, "user_summaries"):
        return None
    prev = ctx.read_polars("user_summaries")
    if prev.height == 0 or "error" not in prev.columns:
        return None
    return prev.filter(
        pl.col("error").is_null()
        & (pl.col("model") == model)
        & (pl.col("prompt_version") == PROMPT_VERSION)
    )


def generation_settings(cfg) -> dict:
    """Every setting that can change a summary's text besides its prompt: generation length
    and batch (padding changes the numerics), the output cap, the model's dtype and device,
    the Ray batch a generation batch is cut from. Part of history_fingerprint."""
    s = cfg.summaries
    return {
        "max_new_tokens": s.max_new_tokens,
        "batch_size": s.batch_size,
        "max_chars": s.max_chars,
        "dtype": cfg.llm.dtype,
        "device": cfg.llm.device,
        "user_batch": cfg.llm.user_batch,
        "decoding": "greedy",
    }


def run(ctx: StageContext) -> None:
    from pipelines.llm.inputs import histories, item_texts, select_users
    from pipelines.llm.model import model_name
    from pipelines.llm.ray_exec import run_llm_stage
    from pipelines.llm.workers import SUMMARY_OUT, SummaryWorker

    cfg, scfg = ctx.config.llm, ctx.config.summaries
    schema = SCHEMA
    if not cfg.enabled:
        ctx.write("user_summaries", pl.DataFrame(schema=schema), extra={"disabled": True})
        return
    name = model_name(cfg.model)
    users = select_users(ctx.read_polars("candidates"), ctx.config)
    texts = item_texts(ctx.read_polars("items"), cfg.max_item_chars)
    hist = histories(ctx.read_polars("train"), users, scfg.history, texts)
    few = hist.filter(pl.col("n_events") < scfg.min_history).height
    untitled = hist.filter(
        (pl.col("n_events") >= scfg.min_history) & (pl.col("quoted").list.len() == 0)
    ).height
    todo = hist.filter((pl.col("n_events") >= scfg.min_history) & (pl.col("quoted").list.len() > 0))
    settings = generation_settings(ctx.config)
    todo = todo.with_columns(
        pl.Series(
            "history_fingerprint",
            [
                history_fingerprint(list(ids), list(quoted), name, PROMPT_VERSION, settings)
                for ids, quoted in zip(
                    todo["item_id"].to_list(), todo["quoted"].to_list(), strict=True
                )
            ],
            dtype=pl.String,
        )
    )
    prev = _previous(ctx, name)
    kept = pl.DataFrame(schema=schema)
    if prev is not None:
        kept = prev.join(
            todo.select("user_id", "history_fingerprint"),
            on=["user_id", "history_fingerprint"],
            how="semi",
        ).select(list(schema))
        todo = todo.join(kept.select("user_id"), on="user_id", how="anti")
    ctx.log(
        f"{todo.height} users to summarise, {kept.height} unchanged kept, "
        f"{untitled} without titled items and {few} with < {scfg.min_history} events skipped"
    )
    params = {
        "max_new_tokens": scfg.max_new_tokens,
        "batch_size": scfg.batch_size,
        "max_chars": scfg.max_chars,
    }
    rows = todo.select("user_id", pl.col("quoted").alias("history"))
    out, stats, store = run_llm_stage(
        ctx.config, ctx.run_dir, ctx.stage.name, ctx.stage_key, rows, SummaryWorker, params,
        SUMMARY_OUT, ctx.log,
    )  # fmt: skip
    new = (
        pl.from_arrow(out)
        .join(todo.select("user_id", "history_fingerprint"), on="user_id")
        .with_columns(pl.lit(name).alias("model"), pl.lit(PROMPT_VERSION).alias("prompt_version"))
        .select(list(schema))
    )
    table = pl.concat([kept, new]).sort("user_id")
    ctx.write(
        "user_summaries",
        table,
        extra={
            **stats,
            "model": name,
            "kept_unchanged": kept.height,
            "skipped_no_titles": untitled,
            "skipped_short_history": few,
        },
    )
    store.clear()


STAGE = Stage(
    name="summaries",
    fn=run,
    inputs=("candidates", "train", "items"),
    outputs=("user_summaries",),
    config_keys=(
        "summaries",
        "llm.enabled",
        "llm.model",
        "llm.dtype",
        "llm.max_users",
        "llm.max_item_chars",
        "llm.seed",
        "run.seed",
    ),
    skip_reason=summaries_used,
    engine="ray",
    description="LLM user preference summaries on Ray actors (incremental, resumable)",
)
