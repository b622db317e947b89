"""evaluate: rankings/candidates + holdout -> metrics table, report.md, report.html (Polars).

A serve run (eval.target = serve) has no holdout: its metrics are the label-free ones.
"""

from __future__ import annotations

from pipelines import tableio
from pipelines.evaluation.run import evaluate_run
from pipelines.stage import Stage, StageContext


def run(ctx: StageContext) -> None:
    from pipelines.evaluation import render_report_md

    cfg = ctx.config.eval
    metrics = evaluate_run(ctx.run_dir, cfg.tables, cfg.ks, cfg.target, cfg.max_rows_in_memory)
    ctx.write("metrics", metrics, extra={"target": cfg.target})
    extra = []
    if "candidates" in cfg.tables and tableio.is_committed(ctx.run_dir, "candidates"):
        from pipelines.evaluation.per_source import overlap_markdown, run_source_overlap

        k = min(cfg.ks)
        extra.append(
            overlap_markdown(run_source_overlap(ctx.run_dir, k, cfg.max_rows_in_memory), k)
        )
    report = render_report_md(
        metrics,
        title=f"WalkRank run {ctx.run_dir.name} (target: {cfg.target})",
        extra_sections=extra,
    )
    (ctx.run_dir / "report.md").write_text(report)
    from pipelines.evaluation.report_html import render_report_html

    k = 10 if 10 in cfg.ks else min(cfg.ks)
    (ctx.run_dir / "report.html").write_text(render_report_html(ctx.run_dir, k))


STAGE = Stage(
    name="evaluate",
    fn=run,
    inputs=("holdout", "train", "items", "candidates", "rankings"),
    outputs=("metrics",),
    # Not eval.max_rows_in_memory: it changes how the tables are read, not the metrics.
    config_keys=("eval.target", "eval.ks", "eval.tables"),
    engine="local",
    description="accuracy and beyond-accuracy metrics by segment; report.md, report.html",
)
