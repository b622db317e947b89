"""rank: final rankings -> rankings.

rank.method = learned (the default): the fitted LightGBM ranker (fit_ranker's model, or
rank.model) scores every candidate's features in Spark tasks and orders each user's list by
that score (pipelines/ranker/score.py). When there is no model (the fit pass had too few
labelled users, or eval.target = valid) it falls back to the fusion below, said in the log.

rank.method = fusion: per user, the candidates with an LLM score (the top
llm.score_top_m) are re-ordered by z(candidate score) + w * z(llm score)
(udfs/rank_fusion.py); the others keep their candidate order below them. Users are fused a
bucket at a time (about eval.max_rows_in_memory candidate rows), so the driver never holds
the whole candidates table. With eval.target = "valid" the weight w is fitted on the valid
holdout (grid rank.grid, NDCG@rank.fit_k) and written to <run>/rank_weights.toml,
to pass to a test run as --set rank.llm_weight=<w>; with "test" it is rank.llm_weight.
Without LLM scores (llm.enabled = false) rankings is the candidate order.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipelines import tableio
from pipelines.config import Config
from pipelines.evaluation.buckets import n_buckets, read_buckets
from pipelines.stage import Stage, StageContext
from pipelines.stages.fit_ranker import ranker_fit_planned
from pipelines.stages.item_embeddings import item_vectors_used
from pipelines.stages.llm_scores import llm_scores_used
from pipelines.stages.ranker_inputs import llm_score_table, summary_table, text_vectors
from pipelines.stages.summary_embeddings import summary_feature_used
from pipelines.storage import Location
from schemas import contract, score_column
from udfs.rank_fusion import fit_llm_weight, rerank


def _groups(scored: pl.DataFrame, targets: dict[str, str]):
    out = []
    for (user,), g in scored.group_by("user_id", maintain_order=True):
        items = g["item_id"].to_list()
        t = targets.get(user)
        out.append(
            (
                g["score"].to_numpy(),
                g["llm_score"].to_numpy(),
                items.index(t) if t in items else None,
            )
        )
    return out


def rank_with_llm(cands: pl.DataFrame, llm: pl.DataFrame, w: float) -> pl.DataFrame:
    """candidates (+ llm_score where scored) -> rankings rows with rank, score, components."""
    scored = (
        cands.join(llm, on=["user_id", "item_id"], how="inner")
        .sort("user_id", "rank")
        .select("user_id", "item_id", "rank", "score", "llm_score")
    )
    parts = []
    for (_user,), g in scored.group_by("user_id", maintain_order=True):
        order, fused = rerank(g["score"].to_numpy(), g["llm_score"].to_numpy(), w)
        parts.append(
            g.with_columns(
                pl.Series("new_rank", np.argsort(order) + 1, dtype=pl.Int64),
                pl.Series("fused", fused),
            )
        )
    re = (
        pl.concat(parts)
        if parts
        else scored.with_columns(
            pl.lit(None, pl.Int64).alias("new_rank"), pl.lit(None, pl.Float64).alias("fused")
        )
    )
    n_scored = re.group_by("user_id").agg(pl.len().alias("n_scored"))
    out = (
        cands.join(
            re.select("user_id", "item_id", "new_rank", "fused", "llm_score"),
            on=["user_id", "item_id"],
            how="left",
        )
        .join(n_scored, on="user_id", how="left")
        .with_columns(pl.col("n_scored").fill_null(0))
        # Unscored rows keep their relative order after the scored ones.
        .with_columns(
            pl.when(pl.col("new_rank").is_not_null())
            .then(pl.col("new_rank"))
            .otherwise(
                pl.col("n_scored")
                + pl.col("rank").rank("ordinal").over("user_id", pl.col("new_rank").is_null())
            )
            .alias("_r")
        )
    )
    return out


def _model_folder(ctx: StageContext):
    """The fitted model's folder, or None (with the reason logged) when there is none."""
    from pipelines.ranker.artifact import model_dir

    cfg = ctx.config.rank
    if cfg.method != "learned":
        return None
    if cfg.model:
        return cfg.model
    why = ranker_fit_planned(ctx.config)
    if why is None:
        m = ctx.manifest("ranker_model")
        if m["extra"].get("fitted"):
            return model_dir(ctx.run_dir)
        why = m["extra"].get("reason", "no model was fitted")
    ctx.log(f"rank.method = learned falls back to the fusion order: {why}")
    return None


def rank_learned(ctx: StageContext, folder) -> None:
    from pipelines.ranker.artifact import load_model
    from pipelines.ranker.features import window_partitions
    from pipelines.ranker.score import learned_rankings

    model = load_model(folder)
    sources = tableio.candidate_sources(ctx.run_dir)
    edges = (
        ctx.read_spark("graph_edges") if "graph_edges" in ctx.stage.inputs_for(ctx.config) else None
    )
    uses = set(model.features)
    summary = summary_table(ctx, "summary_cos" in uses)  # first: its error names its setting
    vecs = text_vectors(ctx, bool(uses & {"text_cos", "summary_cos"}))
    parts = window_partitions(
        ctx.manifest("candidates")["rows"], ctx.config.spark.shuffle_partitions
    )
    out = learned_rankings(
        ctx.read_spark("candidates"), ctx.read_spark("train"), ctx.read_spark("items"), edges,
        sources, model.text, model.features, ctx.config.rank.recent_fraction,
        ctx.config.rank.text_half_life, item_vecs=vecs,
        llm_scores=llm_score_table(ctx, "llm_score" in uses), summary_embeddings=summary,
        partitions=parts,
    )  # fmt: skip
    ctx.log(f"scoring {len(model.features)} features with the ranker in {folder}")
    ctx.write(
        "rankings",
        out,  # in (user, rank) order within each partition, as the kernel emits it
        extra={
            "order": "learned ranker",
            "model": str(folder),
            "features": model.features,
            **_model_origin(ctx, model.meta),
        },
    )


def _model_origin(ctx: StageContext, meta: dict) -> dict:
    """Where a model came from (its run, that run's target and data end), and in an evaluation
    run a warning when the model's data reach into the holdout."""
    from pipelines.ranker.latest import holdout_overlap, ts_bound, when

    end = meta.get("data_end")
    out = {
        "model_run": meta.get("run"),
        "model_run_target": meta.get("run_target"),
        "model_data_end": when(end) if end is not None else None,
        "model_choice": _model_choice(ctx),
    }
    if ctx.config.eval.target != "serve" and ctx.config.rank.model:
        first = ts_bound(ctx.read_arrow("holdout", ["ts"]).column("ts"), "min")
        warning = holdout_overlap(meta, first)
        if warning:
            ctx.log(f"warning: {warning}")
            out["warning"] = warning
    return out


def _model_choice(ctx: StageContext) -> str:
    """Why this model: the plan's note when rank.model = latest chose it (api.prepare wrote it
    into this run's plan.json), else the setting or this run's own fit."""
    import json

    plan = ctx.run_dir / "plan.json"
    notes = json.loads(plan.read_text()).get("notes", []) if plan.exists() else []
    latest = [n for n in notes if n.startswith("rank.model = latest")]
    if latest:
        return latest[0]
    return "rank.model is set" if ctx.config.rank.model else "fitted in this run (fit_ranker)"


def run(ctx: StageContext) -> None:
    folder = _model_folder(ctx)
    if folder is not None:
        rank_learned(ctx, folder)
        return
    score_cols = [score_column(n) for n in tableio.candidate_sources(ctx.run_dir)]
    cols = ["user_id", "item_id", "rank", "score", *score_cols]
    if "llm_scores" not in ctx.stage.inputs_for(ctx.config):
        _candidate_order(ctx, cols, "candidate order (fusion)")
        return
    llm = ctx.read_polars("llm_scores")
    llm = llm.filter(pl.col("llm_score").is_not_null()).select("user_id", "item_id", "llm_score")
    if llm.height == 0:
        _candidate_order(ctx, cols, "candidate order (no LLM scores)")
        return
    cands = tableio.scan_polars(ctx.run_dir, "candidates").select(cols)
    cfg, target = ctx.config.rank, ctx.config.eval.target
    w, fit = cfg.llm_weight, None
    if target == "valid":
        hold = ctx.read_polars("holdout").filter(pl.col("split") == "valid")
        targets = dict(zip(hold["user_id"].to_list(), hold["item_id"].to_list(), strict=True))
        # One row per LLM-scored candidate: as small as llm_scores, whatever candidates' size.
        scored = (
            cands.join(llm.lazy(), on=["user_id", "item_id"], how="inner")
            .filter(pl.col("user_id").is_in(list(targets)))
            .collect(engine="streaming")
            .sort("user_id", "rank")
        )
        w, table = fit_llm_weight(_groups(scored, targets), cfg.grid, cfg.fit_k)
        fit = {
            "split": "valid",
            "users": scored["user_id"].n_unique(),
            f"ndcg@{cfg.fit_k}": {str(k): round(v, 6) for k, v in table.items()},
        }
        path = ctx.run_dir / "rank_weights.toml"
        path.write_text(f"[rank]\nllm_weight = {w!r}\n")
        ctx.log(f"fitted rank.llm_weight = {w} on {fit['users']} valid users -> {path}")
    n = n_buckets(ctx.manifest("candidates")["rows"], ctx.config.eval.max_rows_in_memory)
    rankings = contract("rankings")

    def write(out: Location) -> None:
        """One Parquet file per bucket of users (eval.max_rows_in_memory candidate rows)."""
        for bucket in read_buckets(cands, n):
            part = _fused_rankings(bucket.rows, bucket.users_of(llm), w, cols)
            path = (out / f"part-{bucket.index:05d}.parquet").path
            pq.write_table(rankings.conform(part.to_arrow()), path, filesystem=out.fs)

    if n > 1:
        ctx.log(f"fusing the LLM score in {n} buckets of users (eval.max_rows_in_memory)")
    ctx.write(
        "rankings",
        tableio.FilesWriter(write),
        extra={"order": "candidate score fused with llm score", "llm_weight": w, "fit": fit},
    )


def _candidate_order(ctx: StageContext, cols: list[str], why: str) -> None:
    """rankings = candidates in their order, on Spark (no table on the driver)."""
    ctx.write(
        "rankings",
        ctx.read_spark("candidates").select(cols).sortWithinPartitions("user_id", "rank"),
        extra={"order": why},
    )


def _fused_rankings(cands: pl.DataFrame, llm: pl.DataFrame, w: float, cols: list[str]):
    """Some users' candidates with the LLM score fused in -> their rankings rows, sorted."""
    return (
        rank_with_llm(cands, llm, w)
        .with_columns(
            pl.col("_r").cast(pl.Int32).alias("rank"),
            pl.col("score").alias("candidate_score"),
            # Scored rows carry their fused score; the rest keep the candidate score (the
            # rank column, not the score, orders the two groups).
            pl.coalesce("fused", "score").alias("score"),
        )
        .select(*cols, "candidate_score", "llm_score")
        .sort("user_id", "rank")
    )


def learned_ranker(cfg: Config) -> bool:
    """rank orders by a learned ranker: rank.model, or the one fit_ranker fits in this run."""
    return cfg.rank.method == "learned" and bool(cfg.rank.model or ranker_fit_planned(cfg) is None)


def rank_planned(cfg: Config) -> str | None:
    """None when the rank stage runs (a learned ranker, or LLM scores to blend), else why not."""
    return None if learned_ranker(cfg) else llm_scores_used(cfg)


def rank_inputs(cfg: Config | None) -> tuple[str, ...]:
    """What rank reads under `cfg` (with None: all it may read): the learned ranker's tables,
    the LLM scores when used."""
    if cfg is None:
        return ("train", "items", "graph_edges", "item_embeddings", "summary_embeddings",
                "ranker_model", "llm_scores", "holdout")  # fmt: skip
    out: list[str] = []
    if learned_ranker(cfg):
        # graph_edges: the transition features (the fit pass builds its own graph too).
        out += ["train", "items", "graph_edges"]
        if item_vectors_used(cfg):
            out.append("item_embeddings")
        if summary_feature_used(cfg) is None:
            out.append("summary_embeddings")
        if ranker_fit_planned(cfg) is None:
            out.append("ranker_model")
        elif cfg.rank.model and cfg.eval.target != "serve":
            out.append("holdout")  # does the reused model's data overlap it (a warning)
    if llm_scores_used(cfg) is None:
        out += ["llm_scores", "holdout"]
    return tuple(out)


def _model_file(cfg: Config) -> list[str]:
    return [cfg.rank.model] if cfg.rank.model else []  # the folder: its files' fingerprint


STAGE = Stage(
    name="rank",
    fn=run,
    inputs=("candidates",),
    config_inputs=rank_inputs,
    raw_inputs=_model_file,
    outputs=("rankings",),
    config_keys=("rank", "eval.target"),
    skip_reason=rank_planned,
    engine="spark",
    description="final rankings: the learned ranker (or the fused candidate order with the LLM score)",
)
