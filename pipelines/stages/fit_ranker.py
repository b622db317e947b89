"""fit_ranker: the fit pass one event earlier, its features and labels -> a LightGBM
lambdarank model (<run>/models/ranker/) and its feature importances (ranker_model).

The fit pass is the run's own pipeline (split ... candidates, with the graph for the
transition features) in <run>/fit/, for the target one event earlier: test -> valid,
serve -> test. Its candidates and features come from events before each user's label, so
the ranker never sees the run's own target. The pass is a run of its own: committed table by
table, resumed and skipped like any run (events and items are linked to the run's: manifests
naming the run's own files, tableio.link_table).
"""

from __future__ import annotations

import copy

from pipelines.config import Config, item_vectors_used, ranker_fit_planned, summary_feature_used
from pipelines.stage import Stage, StageContext
from pipelines.storage import Location

SHIFT = {"test": "valid", "serve": "test"}
IMPORTANCE = "feature string, gain double, splits long"  # the ranker_model table
SHARED = ("events", "items")  # the fit pass reads the run's own copies
# Run in the fit pass only for a feature that needs them (llm_stages), never by its own plan.
LLM_STAGES = {"summaries", "llm_scores", "summary_embeddings"}
# The sections the fit pass's own stages read (the stage key of fit_ranker covers them).
FIT_KEYS = (
    "split", "graph", "ppr", "neighbors", "candidates", "rank", "eval.target", "run.seed",
    "llm", "summaries",
)  # fmt: skip


def fit_pass_config(cfg: Config) -> Config:
    """The run's config, one event earlier, without a ranker of its own (and without the LLM
    stages unless the LLM score or the summary affinity is a feature)."""
    fit = copy.deepcopy(cfg)
    fit.eval.target = SHIFT[cfg.eval.target]
    fit.rank.method = "fusion"
    fit.llm.enabled = bool(llm_stages(cfg))
    return fit


def llm_stages(cfg: Config) -> set[str]:
    """The Ray stages the fit pass runs for the run's LLM and summary features."""
    out: set[str] = set()
    if cfg.llm.enabled and cfg.rank.llm_feature:
        out |= {"summaries", "llm_scores"}
    if summary_feature_used(cfg) is None:
        out |= {"summaries", "summary_embeddings"}
    return out


def run_fit_pass(run_dir: Location, cfg: Config) -> tuple[Location, Config]:
    """Run (or resume) the fit pass in <run>/fit -> (its folder, its config)."""
    from pipelines.plan import plan_stages
    from pipelines.runner import run_stages
    from pipelines.stages import STAGES
    from pipelines.tableio import link_table

    fit_dir, fit_cfg = run_dir / "fit", fit_pass_config(cfg)
    fit_dir.mkdir()
    for name in SHARED:
        link_table(run_dir, name, fit_dir)
    ray_stages = llm_stages(cfg)
    planned = set(plan_stages(list(STAGES.values()), fit_cfg).names) - LLM_STAGES
    wanted = [n for n in STAGES if n in planned | ray_stages | {"graph"}]
    wanted = [n for n in wanted if n not in ("ingest", "evaluate", "rank")]
    run_stages(fit_dir, fit_cfg, [STAGES[n] for n in wanted], label="fit/")
    return fit_dir, fit_cfg


def run(ctx: StageContext) -> None:
    from pyspark.sql import functions as F

    from pipelines import tableio
    from pipelines.evaluation.per_source import source_names
    from pipelines.ranker.artifact import model_dir, save_model
    from pipelines.ranker.features import candidate_features, feature_names
    from pipelines.ranker.fit import (
        fit_lambdarank,
        labelled_pairs,
        labelled_users,
        sample_negatives,
    )
    from pipelines.stages.rank import text_vectors

    cfg = ctx.config.rank
    spark = ctx.spark
    why = ranker_fit_planned(ctx.config)
    if why is not None:  # run by name (--stages, a scheduler's task) where the plan skips it
        _no_model(ctx, f"nothing to fit: {why}")
        return
    fit_dir, fit_cfg = run_fit_pass(ctx.run_dir, ctx.config)
    ctx.log(f"fit pass committed in {fit_dir} (target {fit_cfg.eval.target})")
    spark = ctx.spark  # the fit pass's stages named the Spark job group: this stage's again

    def read(name):
        return tableio.read_spark(spark, fit_dir, name)

    sources = source_names(fit_dir)
    ray_stages = llm_stages(ctx.config)
    llm = read("llm_scores") if "llm_scores" in ray_stages else None
    summary = read("summary_embeddings") if "summary_embeddings" in ray_stages else None
    names = feature_names(sources, cfg.text_features, llm is not None, summary is not None)
    vecs = text_vectors(ctx, cfg.text_features or summary is not None)
    seed, target, holdout = ctx.config.run.seed, fit_cfg.eval.target, read("holdout")
    # The users to learn from first, from the candidates' ids alone: features are then
    # computed for their candidates only (at most rank.max_fit_users users, whatever the size
    # of the run). Every feature of a pair depends on its own user's rows and on train, so
    # they are the features the whole table would give those users.
    pairs = labelled_pairs(read("candidates").select("user_id", "item_id"), holdout, target)
    chosen, n_labelled = labelled_users(pairs, cfg.max_fit_users, seed)
    chosen = spark.createDataFrame(chosen.collect(), "user_id string")
    feats = candidate_features(
        read("candidates").join(F.broadcast(chosen), "user_id"), read("train"), read("items"),
        read("graph_edges"), sources, cfg.recent_fraction, vecs, cfg.text_half_life, llm,
        summary, text=cfg.text_features,
    )  # fmt: skip
    sample = sample_negatives(labelled_pairs(feats, holdout, target), cfg.max_negatives, seed)
    if n_labelled < cfg.min_fit_users:
        why = (
            f"the fit pass has {n_labelled} users whose label is among their candidates "
            f"(< rank.min_fit_users = {cfg.min_fit_users}): rankings keep the fusion order"
        )
        _no_model(ctx, why)
        return
    table = sample.select("user_id", "item_id", "label", *names).toArrow()
    ctx.log(f"fitting on {table.num_rows:,} rows of {n_labelled:,} labelled fit-pass users")
    result = fit_lambdarank(table, names, cfg, ctx.config.run.seed)
    report = {**result.report, "labelled_users": n_labelled, "fit_target": fit_cfg.eval.target}
    k = cfg.fit_k
    learned, fused = report[f"held_out_ranker_ndcg@{k}"], report[f"held_out_fusion_ndcg@{k}"]
    bar = cfg.min_gain + cfg.min_gain_z * report["held_out_gain_se"]
    if learned - fused <= bar:
        why = (
            f"the fitted ranker does not beat the fusion clearly enough on the held-out "
            f"fit-pass users (NDCG@{k} {learned} vs {fused}, {report['held_out_users']} users; "
            f"gain must exceed {bar:.4f} = rank.min_gain + rank.min_gain_z x its standard "
            "error): rankings keep the fusion order"
        )
        _no_model(ctx, why, report)
        return
    folder = model_dir(ctx.run_dir)
    text = result.booster.model_to_string(num_iteration=result.booster.best_iteration)
    save_model(folder, text, names, {"report": report, "stage_key": ctx.stage_key})
    ctx.log(
        f"ranker: {report['best_iteration']} rounds, held-out NDCG@{k} {learned} "
        f"(fusion {fused}) -> {folder}"
    )
    imp = report["importance"]
    rows = [(n, float(imp[n]["gain"]), int(imp[n]["split"])) for n in names]
    ctx.write(
        "ranker_model",
        spark.createDataFrame(rows, IMPORTANCE),
        extra={"fitted": True, "model": str(folder), "report": report},
    )


def _no_model(ctx: StageContext, why: str, report: dict | None = None) -> None:
    """Commit an empty ranker_model saying why; rank then keeps the fusion order. A model
    folder of an earlier fit is removed, so nothing points at a model this run rejected."""
    from pipelines.ranker.artifact import model_dir, remove_model

    ctx.log(why)
    remove_model(model_dir(ctx.run_dir))
    extra = {"fitted": False, "reason": why, **({"report": report} if report else {})}
    ctx.write("ranker_model", ctx.spark.createDataFrame([], IMPORTANCE), extra=extra)


STAGE = Stage(
    name="fit_ranker",
    fn=run,
    inputs=("events", "items"),
    # The item embeddings are the run's own: item text does not depend on the split.
    config_inputs=lambda cfg: ("item_embeddings",) if item_vectors_used(cfg) else (),
    outputs=("ranker_model",),
    config_keys=FIT_KEYS,
    skip_reason=ranker_fit_planned,
    description="fit pass one event earlier, then a LightGBM lambdarank ranker on its labels",
)
