"""llm_scores (Ray): pointwise LLM scores of each user's top llm.score_top_m candidates.

Prompt: instruction + user summary + recent titled items + candidate (quoted, capped).
llm.scorer = yes_no: logit("yes") - logit("no") at the answer position; title_loglik: the
mean log-likelihood of the candidate's quoted title as the assistant's reply. One user's
shared prefix runs once and its KV cache serves all of that user's candidates
(llm.batching = shared_prefix; `padded` is the plain baseline). Candidates without a title
are not scored (counted in the manifest). Incremental: a user whose score_fingerprint (the
prompt: summary, history, candidates; the model and scoring settings) matches the run's own
committed table, or another run's (reuse.run: pipelines/previous_run.py), keeps those scores.
Resumable shards.
"""

from __future__ import annotations

import polars as pl

from pipelines.config import Config
from pipelines.stage import Stage, StageContext
from schemas.tables import LLM_SCORES
from udfs.prompts import PROMPT_VERSION

# The table's columns, optional ones included, as Polars types (schemas/ is the truth).
SCHEMA = dict(pl.from_arrow(LLM_SCORES.full_schema.empty_table()).schema)


def llm_scores_used(cfg: Config) -> str | None:
    """None when the rank stage will use LLM scores, else why not (the plan prints it)."""
    if not cfg.llm.enabled:
        return "llm.enabled = false"
    if cfg.rank.method == "learned" and cfg.rank.llm_feature and cfg.eval.target != "valid":
        return None  # a feature of the learned ranker
    if cfg.eval.target != "valid" and cfg.rank.llm_weight == 0:
        return "rank.llm_weight = 0 (fit it with eval.target = valid)"
    return None


def score_inputs(ctx: StageContext) -> tuple[pl.DataFrame, int]:
    """One row per selected user: summary, history, item_ids and quoted candidates; plus the
    count of top-m candidates skipped for lack of a title."""
    from pipelines.llm.inputs import histories, item_texts, select_users

    cfg = ctx.config.llm
    users = select_users(ctx.read_polars("candidates"), ctx.config)
    texts = item_texts(ctx.read_polars("items"), cfg.max_item_chars)
    top = (
        ctx.read_polars("candidates")
        .select("user_id", "item_id", "rank")
        .filter(pl.col("user_id").is_in(users) & (pl.col("rank") <= cfg.score_top_m))
        .join(texts, on="item_id", how="left")
    )
    untitled = top.filter(pl.col("quoted").is_null()).height
    cands = (
        top.filter(pl.col("quoted").is_not_null())
        .sort("user_id", "rank")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("item_id").alias("item_ids"), pl.col("quoted").alias("candidates"))
    )
    summaries = ctx.read_polars("user_summaries")
    summaries = (
        summaries.filter(pl.col("error").is_null()).select("user_id", "summary")
        if "error" in summaries.columns
        else summaries.select("user_id", "summary")
    )
    hist = histories(ctx.read_polars("train"), users, cfg.history, texts).select(
        "user_id", pl.col("quoted").alias("history")
    )
    rows = cands.join(hist, on="user_id", how="left").join(summaries, on="user_id", how="left")
    return rows.with_columns(pl.col("history").fill_null([])), untitled


def score_settings(cfg: Config) -> dict:
    """Every setting besides the prompt that can change a user's scores: the scorer, the
    batching and its batch (padding changes the numerics), the model's dtype and device.
    Part of score_fingerprint."""
    llm = cfg.llm
    return {
        "scorer": llm.scorer,
        "batching": llm.batching,
        "pair_batch": llm.pair_batch,
        "dtype": llm.dtype,
        "device": llm.device,
    }


def reusable(table: pl.LazyFrame, todo: pl.DataFrame, model: str, scorer: str) -> pl.DataFrame:
    """The rows of a committed llm_scores table (this run's or another's) that `todo` may keep:
    every row of a user whose score_fingerprint is unchanged, when none of them has an error,
    of the same model, prompt version and scorer. A table of before the fingerprint has none."""
    names = table.collect_schema().names()
    if "score_fingerprint" not in names:
        return pl.DataFrame(schema=SCHEMA)
    for col in ("scorer", "error"):
        if col not in names:
            table = table.with_columns(pl.lit(None, pl.String).alias(col))
    rows = table.filter(
        (pl.col("model") == model)
        & (pl.col("prompt_version") == PROMPT_VERSION)
        & (pl.col("scorer").is_null() | (pl.col("scorer") == scorer))
    ).join(
        todo.lazy().select("user_id", "score_fingerprint"),
        on=["user_id", "score_fingerprint"],
        how="semi",
    )
    failed = rows.filter(pl.col("error").is_not_null()).select("user_id")
    return rows.join(failed, on="user_id", how="anti").collect()


def run(ctx: StageContext) -> None:
    from pipelines.llm.inputs import score_fingerprints
    from pipelines.llm.model import model_name
    from pipelines.llm.ray_exec import run_llm_stage
    from pipelines.llm.workers import SCORE_OUT, ScoreWorker
    from pipelines.previous_run import reuse_rows

    cfg = ctx.config.llm
    if not cfg.enabled:
        ctx.write("llm_scores", pl.DataFrame(schema=SCHEMA), extra={"disabled": True})
        return
    name = model_name(cfg.model)
    rows, untitled = score_inputs(ctx)
    rows = rows.with_columns(score_fingerprints(rows, name, score_settings(ctx.config)))
    kept, rows, reuse = reuse_rows(
        ctx.run_dir, "llm_scores", ctx.config, rows,
        lambda table, left: reusable(table, left, name, cfg.scorer), "user_id", SCHEMA,
        nested=ctx.label, log=ctx.log,
    )  # fmt: skip
    ctx.log(
        f"{rows['item_ids'].list.len().sum() or 0} pairs of {rows.height} users to score, "
        f"{reuse.describe()} (pairs)"
    )
    params = {"scorer": cfg.scorer, "batching": cfg.batching, "pair_batch": cfg.pair_batch}
    out, stats, store = run_llm_stage(
        ctx.config, ctx.run_dir, ctx.stage.name, ctx.stage_key,
        rows.select("user_id", "summary", "history", "item_ids", "candidates"), ScoreWorker,
        params, SCORE_OUT, ctx.log,
    )  # fmt: skip
    new = (
        pl.from_arrow(out)
        .join(rows.select("user_id", "score_fingerprint"), on="user_id")
        .with_columns(
            pl.lit(name).alias("model"),
            pl.lit(PROMPT_VERSION).alias("prompt_version"),
            pl.lit(cfg.scorer).alias("scorer"),
        )
        .select(list(SCHEMA))
    )
    ctx.write(
        "llm_scores",
        pl.concat([kept, new]).sort("user_id", "item_id"),
        extra={
            **stats,
            **reuse.extra(new.height),
            "users_reused": kept["user_id"].n_unique(),
            "model": name,
            "scorer": cfg.scorer,
            "batching": cfg.batching,
            "skipped_untitled_candidates": untitled,
        },
    )
    store.clear()


STAGE = Stage(
    name="llm_scores",
    fn=run,
    inputs=("candidates", "train", "items", "user_summaries"),
    outputs=("llm_scores",),
    config_keys=(
        "llm.enabled",
        "llm.model",
        "llm.dtype",
        "llm.max_users",
        "llm.score_top_m",
        "llm.scorer",
        "llm.history",
        "llm.max_item_chars",
        "llm.seed",
        "run.seed",
    ),
    skip_reason=llm_scores_used,
    engine="ray",
    description="pointwise LLM scores of top candidates on Ray actors (resumable)",
)
