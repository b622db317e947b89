"""summaries (Ray): offline LLM preference profiles of users -> user_summaries.

For each selected user with at least summaries.min_history train events and at least one
titled item: a chat prompt from the last summaries.history titled items, batched greedy
generation on Ray actors. Incremental: a user whose history_fingerprint (history ids and
quoted text, model, prompt version, generation settings) matches a row of the run's own
committed table, or of another run's (reuse.run: pipelines/previous_run.py), keeps that
summary. Resumable shards.
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


def reusable(table: pl.LazyFrame, todo: pl.DataFrame, model: str) -> pl.DataFrame:
    """The rows of a committed user_summaries table (this run's or another's) that `todo` may
    keep: same user and history_fingerprint (history, model, prompt, generation settings),
    the same model and prompt version, and no error."""
    if "error" in table.collect_schema().names():
        table = table.filter(pl.col("error").is_null())
    else:
        table = table.with_columns(pl.lit(None, pl.String).alias("error"))
    return (
        table.filter((pl.col("model") == model) & (pl.col("prompt_version") == PROMPT_VERSION))
        .join(
            todo.lazy().select("user_id", "history_fingerprint"),
            on=["user_id", "history_fingerprint"],
            how="semi",
        )
        .unique("user_id", keep="first", maintain_order=True)
        .collect()
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


def histories_to_summarise(ctx: StageContext, name: str) -> tuple[pl.DataFrame, int, int]:
    """-> (users to summarise with their history and history_fingerprint, users skipped for
    want of a titled item, users skipped for fewer than summaries.min_history events)."""
    from pipelines.llm.inputs import histories, item_texts, select_users

    cfg, scfg = ctx.config.llm, ctx.config.summaries
    users = select_users(ctx.read_polars("candidates"), ctx.config)
    texts = item_texts(ctx.read_polars("items"), cfg.max_item_chars)
    hist = histories(ctx.read_polars("train"), users, scfg.history, texts)
    enough = pl.col("n_events") >= scfg.min_history
    few = hist.filter(~enough).height
    untitled = hist.filter(enough & (pl.col("quoted").list.len() == 0)).height
    todo = hist.filter(enough & (pl.col("quoted").list.len() > 0))
    settings = generation_settings(ctx.config)
    fingerprints = [
        history_fingerprint(list(ids), list(quoted), name, PROMPT_VERSION, settings)
        for ids, quoted in zip(todo["item_id"].to_list(), todo["quoted"].to_list(), strict=True)
    ]
    todo = todo.with_columns(pl.Series("history_fingerprint", fingerprints, dtype=pl.String))
    return todo, untitled, few


def run(ctx: StageContext) -> None:
    from pipelines.llm.model import model_name
    from pipelines.llm.ray_exec import run_llm_stage
    from pipelines.llm.workers import SUMMARY_OUT, SummaryWorker
    from pipelines.previous_run import reuse_rows

    cfg, scfg = ctx.config.llm, ctx.config.summaries
    schema = SCHEMA
    if not cfg.enabled:
        ctx.write("user_summaries", pl.DataFrame(schema=schema), extra={"disabled": True})
        return
    name = model_name(cfg.model)
    todo, untitled, few = histories_to_summarise(ctx, name)
    kept, todo, reuse = reuse_rows(
        ctx.run_dir, "user_summaries", ctx.config, todo,
        lambda table, left: reusable(table, left, name), "user_id", schema,
        nested=ctx.label, log=ctx.log,
    )  # fmt: skip
    ctx.log(
        f"{todo.height} users to summarise, {reuse.describe()}, "
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
            **reuse.extra(new.height),
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
