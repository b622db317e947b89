"""fit_ranker: the fit pass one event earlier, its features and labels -> a LightGBM
lambdarank model (<run>/models/ranker/) and its feature importances (ranker_model).

The fit pass is the run's own pipeline (split ... candidates, with the graph for the
transition features) in <run>/fit/, for the target one event earlier: test -> valid,
serve -> test. Its candidates and features come from events before each user's label, so
the ranker never sees the run's own target. The stage declares it (`fit_pass`, a
`Stage.nested`); the planner plans it from the registry and the runner runs it, committed
table by table, resumed and skipped like any run, just before this stage (events and items
are linked to the run's: manifests naming the run's own files). This stage then reads its
tables (`fit/<table>`: their fingerprints are inputs of its key, so a fit pass that changes
re-fits the ranker) and fits.
"""

from __future__ import annotations

import copy
import math

from pipelines.config import Config
from pipelines.stage import Nested, Stage, StageContext
from pipelines.stages.item_embeddings import item_vectors_used
from pipelines.stages.summary_embeddings import summary_feature_used

SHIFT = {"test": "valid", "serve": "test"}
FOLDER = "fit"  # <run>/fit: the fit pass
IMPORTANCE = "feature string, gain double, splits long"  # the ranker_model table
SHARED = ("events", "items")  # the fit pass reads the run's own copies


def ranker_fit_planned(cfg: Config) -> str | None:
    """None when the run fits a learned ranker (fit_ranker stage), else why not."""
    if cfg.rank.method != "learned":
        return f"rank.method = {cfg.rank.method}"
    if cfg.rank.model == "latest":
        return "rank.model = latest (chosen when the run starts: walkrank plan --run-dir)"
    if cfg.rank.model:
        return "rank.model is set (a fitted model is reused)"
    if cfg.eval.target == "valid":
        return "eval.target = valid: no earlier event to fit a ranker on (fusion order)"
    return None


def fit_reads(cfg: Config) -> tuple[str, ...]:
    """The fit pass's tables this stage reads: its labels, candidates and the features' tables
    (the LLM score and the summary affinity only when they are features)."""
    reads = ["holdout", "candidates", "train", "items", "graph_edges"]
    if cfg.llm.enabled and cfg.rank.llm_feature:
        reads.append("llm_scores")
    if summary_feature_used(cfg) is None:
        reads.append("summary_embeddings")
    return tuple(reads)


def fit_sample_size(cfg: Config) -> int:
    """The fit pass's user sample (run.user_sample): the ranker's users plus its held-out
    share (rank.max_fit_users x (1 + rank.valid_fraction))."""
    return math.ceil(cfg.rank.max_fit_users * (1 + cfg.rank.valid_fraction))


def fit_pass_config(cfg: Config) -> Config:
    """The run's config, one event earlier, without a ranker of its own (and without the LLM
    stages unless the LLM score or the summary affinity is a feature), its per-user tables for
    a sample of the users with a label (pipelines/user_sample.py)."""
    fit = copy.deepcopy(cfg)
    fit.eval.target = SHIFT[cfg.eval.target]
    fit.run.user_sample = fit_sample_size(cfg)
    fit.rank.method = "fusion"
    fit.llm.enabled = bool({"llm_scores", "summary_embeddings"} & set(fit_reads(cfg)))
    return fit


def fit_pass(cfg: Config) -> Nested | None:
    """The fit pass this stage reads under `cfg` (Stage.nested), or None when nothing is fitted."""
    if ranker_fit_planned(cfg) is not None:
        return None
    why = f"the ranker's labels: eval.target = {SHIFT[cfg.eval.target]}"
    return Nested(FOLDER, fit_pass_config(cfg), fit_reads(cfg), SHARED, why)


def run(ctx: StageContext) -> None:
    from pipelines.ranker.artifact import model_dir, save_model
    from pipelines.ranker.fit import fit_lambdarank, rejection

    why = ranker_fit_planned(ctx.config)
    if why is not None:  # run by name (--stages, a scheduler's task) where the plan skips it
        _no_model(ctx, f"nothing to fit: {why}")
        return
    cfg, target = ctx.config.rank, SHIFT[ctx.config.eval.target]
    ctx.log(f"reading the fit pass in {ctx.run_dir / FOLDER} (target {target})")
    table, names, n_labelled = _training_rows(ctx, target)
    if n_labelled < cfg.min_fit_users:
        why = (
            f"the fit pass has {n_labelled} users whose label is among their candidates "
            f"(< rank.min_fit_users = {cfg.min_fit_users}): rankings keep the fusion order"
        )
        _no_model(ctx, why)
        return
    table = table.toArrow()
    ctx.log(f"fitting on {table.num_rows:,} rows of {n_labelled:,} labelled fit-pass users")
    result = fit_lambdarank(table, names, cfg, ctx.config.run.seed)
    report = {**result.report, "labelled_users": n_labelled, "fit_target": target}
    why = rejection(report, cfg)
    if why is not None:
        _no_model(ctx, why, report)
        return
    from pipelines.ranker.latest import data_end

    folder = model_dir(ctx.run_dir)
    text = result.booster.model_to_string(num_iteration=result.booster.best_iteration)
    # What rank.model = latest checks in a later run (pipelines/ranker/latest.py).
    origin = {"run": ctx.run_dir.uri, "run_target": ctx.config.eval.target}
    origin["data_end"] = data_end(ctx.run_dir)
    save_model(folder, text, names, {"report": report, "stage_key": ctx.stage_key, **origin})
    ctx.log(
        f"ranker: {report['best_iteration']} rounds, held-out NDCG@{cfg.fit_k} "
        f"{report[f'held_out_ranker_ndcg@{cfg.fit_k}']} "
        f"(fusion {report[f'held_out_fusion_ndcg@{cfg.fit_k}']}) -> {folder}"
    )
    imp = report["importance"]
    rows = [(n, float(imp[n]["gain"]), int(imp[n]["split"])) for n in names]
    ctx.write(
        "ranker_model",
        ctx.spark.createDataFrame(rows, IMPORTANCE),
        extra={"fitted": True, "model": str(folder), "report": report},
    )


def _training_rows(ctx: StageContext, target: str):
    """The fit pass's labelled pairs with their features (a Spark DataFrame: user_id, item_id,
    label, features), the feature names and the number of labelled users."""
    from pyspark.sql import functions as F

    from pipelines.ranker.features import candidate_features, feature_names
    from pipelines.ranker.fit import labelled_pairs, labelled_users, sample_negatives
    from pipelines.stages.ranker_inputs import llm_score_table, summary_table, text_vectors
    from pipelines.tableio import candidate_sources

    cfg, spark, reads = ctx.config.rank, ctx.spark, fit_reads(ctx.config)

    def read(name: str):
        return ctx.read_spark(f"{FOLDER}/{name}")

    sources = candidate_sources(ctx.run_dir / FOLDER)
    llm = llm_score_table(ctx, "llm_scores" in reads, f"{FOLDER}/llm_scores")
    summary = summary_table(ctx, "summary_embeddings" in reads, f"{FOLDER}/summary_embeddings")
    names = feature_names(sources, cfg.text_features, llm is not None, summary is not None)
    vecs = text_vectors(ctx, cfg.text_features or summary is not None)
    seed, holdout = ctx.config.run.seed, read("holdout")
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
    return sample.select("user_id", "item_id", "label", *names), names, n_labelled


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
    config_inputs=lambda cfg: ("item_embeddings",) if cfg is None or item_vectors_used(cfg) else (),
    # The fit pass's tables are inputs too: their fingerprints carry its config and code.
    nested=fit_pass,
    outputs=("ranker_model",),
    config_keys=("rank", "eval.target", "run.seed"),
    skip_reason=ranker_fit_planned,
    description="fit pass one event earlier, then a LightGBM lambdarank ranker on its labels",
)
