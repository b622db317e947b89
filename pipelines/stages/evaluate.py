"""evaluate: rankings/candidates + holdout -> metrics table and report.md (Polars)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import tableio
from pipelines.stage import Stage, StageContext


def check_split_target(run_dir: str | Path, target: str) -> None:
    """Refuse to score `target` when the run's split was made for another one: under
    eval.target=test the valid rows are inside train, so scoring them measures recall of
    training data. The split stage records its target in the train/holdout manifests."""
    made_for = tableio.read_manifest(run_dir, "holdout").get("extra", {}).get("target")
    if made_for is not None and made_for != target:
        from pipelines.errors import ConfigError

        raise ConfigError(
            f"run {run_dir} was split for eval.target '{made_for}', not '{target}': "
            f"its models were fitted on data that includes the '{target}' rows or not the "
            "same ones, so the metrics would not mean what they say",
            hint=f"evaluate it with --target {made_for}, or run the pipeline again with "
            f"--set eval.target={target} (another --run-id)",
        )


def evaluate_run(
    run_dir: str | Path, tables: list[str], ks: list[int], target: str
) -> pl.DataFrame:
    """Metrics of the given tables of a run against its holdout rows of split `target`."""
    from pipelines.evaluation import evaluate_rankings

    check_split_target(run_dir, target)
    holdout = tableio.read_polars(run_dir, "holdout").filter(pl.col("split") == target)
    if holdout.height == 0:
        from pipelines.errors import WalkRankError

        raise WalkRankError(
            f"no holdout rows with split '{target}' in {run_dir}",
            hint="users need at least split.min_events events to be held out; check the split stage",
        )
    train = tableio.read_polars(run_dir, "train").select("user_id", "item_id")
    n_items = tableio.read_manifest(run_dir, "items")["rows"]
    frames = []
    for table in tables:
        if not tableio.is_committed(run_dir, table):
            continue
        full = tableio.read_polars(run_dir, table)
        recs = full.select("user_id", "item_id", "rank")
        frames.append(
            evaluate_rankings(recs, holdout.select("user_id", "item_id"), train, ks, table, n_items)
        )
        if table == "candidates":  # every source alone, ranked by its own score column
            from pipelines.evaluation.per_source import source_names, source_ranking

            for source in source_names(full):
                frames.append(
                    evaluate_rankings(
                        source_ranking(full, source),
                        holdout.select("user_id", "item_id"),
                        train,
                        ks,
                        f"candidates:{source}",
                        n_items,
                    )
                )
    if not frames:
        from pipelines.errors import TableNotCommittedError

        raise TableNotCommittedError(f"none of {tables} is committed in {run_dir}")
    return pl.concat(frames)


def run(ctx: StageContext) -> None:
    from pipelines.evaluation import render_report_md

    cfg = ctx.config.eval
    metrics = evaluate_run(ctx.run_dir, cfg.tables, cfg.ks, cfg.target)
    ctx.write("metrics", metrics, extra={"target": cfg.target})
    extra = []
    if "candidates" in cfg.tables and tableio.is_committed(ctx.run_dir, "candidates"):
        from pipelines.evaluation.per_source import overlap_markdown, source_overlap

        k = min(cfg.ks)
        extra.append(overlap_markdown(source_overlap(ctx.read_polars("candidates"), k), k))
    report = render_report_md(
        metrics,
        title=f"WalkRank run {ctx.run_dir.name} (target: {cfg.target})",
        extra_sections=extra,
    )
    tableio.write_text_atomic(ctx.run_dir / "report.md", report)
    from pipelines.evaluation.report_html import render_report_html

    k = 10 if 10 in cfg.ks else min(cfg.ks)
    tableio.write_text_atomic(ctx.run_dir / "report.html", render_report_html(ctx.run_dir, k))


STAGE = Stage(
    name="evaluate",
    fn=run,
    inputs=("holdout", "train", "items", "candidates", "rankings"),
    outputs=("metrics",),
    config_keys=("eval",),
    engine="local",
    description="accuracy and beyond-accuracy metrics by segment; report.md, report.html",
)
