"""Evaluate a whole run: its tables against its holdout, label-free metrics of a serve run,
and a serve run's rankings against the events that arrived after it.

* `evaluate_run`: test/valid runs, every table (and every candidate source alone) against
  the holdout rows of the run's target split.
* `serve_metrics`: what needs no labels (coverage, Gini, novelty, user and item counts).
* `evaluate_against`: each user's first event in a new log is the target of that user's
  served rankings; users without new events are counted, not scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipelines import tableio
from pipelines.errors import ConfigError, TableNotCommittedError, WalkRankError
from pipelines.evaluation.beyond_accuracy import beyond_accuracy_metrics
from pipelines.evaluation.evaluate import METRICS_SCHEMA, evaluate_rankings

SERVE_COUNTS = ("users", "catalog_items", "recommended_items")


def run_target(run_dir: str | Path) -> str:
    """The eval.target the run's split was made for (recorded in the train manifest)."""
    return tableio.read_manifest(run_dir, "train")["extra"].get("target", "test")


def check_split_target(run_dir: str | Path, target: str) -> None:
    """Refuse to score `target` when the run's split was made for another one: under
    eval.target=test the valid rows are inside train, so scoring them measures recall of
    training data. The split stage records its target in the train/holdout manifests."""
    made_for = run_target(run_dir)
    if made_for != target:
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
    """Metrics of the given tables of a run: against its holdout rows of split `target`, or
    label-free ones (`serve_metrics`) when the run is a serve run."""
    check_split_target(run_dir, target)
    train = tableio.read_polars(run_dir, "train").select("user_id", "item_id")
    n_items = tableio.read_manifest(run_dir, "items")["rows"]
    committed = [t for t in tables if tableio.is_committed(run_dir, t)]
    if not committed:
        raise TableNotCommittedError(f"none of {tables} is committed in {run_dir}")
    if target == "serve":
        return pl.concat(
            [
                serve_metrics(tableio.read_polars(run_dir, t), train, ks, t, n_items)
                for t in committed
            ]
        )
    holdout = tableio.read_polars(run_dir, "holdout").filter(pl.col("split") == target)
    if holdout.height == 0:
        raise WalkRankError(
            f"no holdout rows with split '{target}' in {run_dir}",
            hint="users need at least split.min_events events to be held out; check the split stage",
        )
    relevant = holdout.select("user_id", "item_id")
    frames = []
    for table in committed:
        full = tableio.read_polars(run_dir, table)
        recs = full.select("user_id", "item_id", "rank")
        frames.append(evaluate_rankings(recs, relevant, train, ks, table, n_items))
        if table == "candidates":  # every source alone, ranked by its own score column
            from pipelines.evaluation.per_source import source_names, source_ranking

            for source in source_names(run_dir):
                frames.append(
                    evaluate_rankings(
                        source_ranking(full, source),
                        relevant,
                        train,
                        ks,
                        f"candidates:{source}",
                        n_items,
                    )
                )
    return pl.concat(frames)


def serve_metrics(
    recs: pl.DataFrame, train: pl.DataFrame, ks: list[int], table: str, n_items: int
) -> pl.DataFrame:
    """Label-free metrics of every user's top-k: coverage, Gini, novelty at each k, and the
    counts users (with rankings), catalog_items and recommended_items (at the largest k)."""
    top = recs.select("user_id", "item_id", "rank").filter(pl.col("rank") <= max(ks))
    n_users = top.get_column("user_id").n_unique()
    counts = {
        "users": n_users,
        "catalog_items": n_items,
        "recommended_items": top.get_column("item_id").n_unique(),
    }
    rows = beyond_accuracy_metrics(top, train, ks, n_items).with_columns(
        pl.lit("all").alias("segment")
    )
    count_rows = pl.DataFrame(
        {
            "metric": list(counts),
            "k": [max(ks)] * len(counts),
            "value": [float(v) for v in counts.values()],
            "segment": ["all"] * len(counts),
        }
    )
    return (
        pl.concat([rows, count_rows], how="diagonal_relaxed")
        .with_columns(pl.lit(table).alias("table"), pl.lit(n_users, pl.Int64).alias("n_users"))
        .select(pl.col(name).cast(dtype) for name, dtype in METRICS_SCHEMA.items())
        .sort("metric", "k")
    )


def first_new_events(events: pl.DataFrame) -> pl.DataFrame:
    """Each user's first event of a new log (earliest ts; ties by item_id): user_id, item_id."""
    return (
        events.sort("user_id", "ts", "item_id")
        .group_by("user_id", maintain_order=True)
        .first()
        .select("user_id", "item_id")
    )


def score_against(
    rankings: pl.DataFrame,
    new_events: pl.DataFrame,
    train: pl.DataFrame,
    ks: list[int],
    n_items: int,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Served rankings against new events: (metrics, counts). Scored users are those with
    rankings and at least one new event; the others are counted, not scored."""
    targets = first_new_events(new_events)
    ranked = rankings.select("user_id").unique()
    scored = targets.join(ranked, on="user_id", how="semi")
    counts = {
        "new_events": new_events.height,
        "users_with_rankings": ranked.height,
        "users_with_new_events": targets.height,
        "users_scored": scored.height,
        "users_without_new_events": ranked.height - scored.height,
        "new_users_without_rankings": targets.height - scored.height,
    }
    if scored.height == 0:
        raise WalkRankError(
            "no user of the run has an event in the new log: nothing to score",
            hint="pass the events that arrived after the run, with the same user ids",
        )
    recs = rankings.select("user_id", "item_id", "rank")
    return evaluate_rankings(recs, scored, train, ks, "rankings", n_items), counts


def evaluate_against(
    run_dir: str | Path,
    against: str,
    fmt: str | None,
    ks: list[int],
    since: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Score a serve run's rankings against a new event log (read with the run's ingest
    settings, any ingest format; with `since`, only its events at or after that ISO time)
    and commit the result as the run's `served_metrics`."""
    from pipelines.config import IngestConfig, load_config, set_value
    from pipelines.ingest import run_ingest
    from pipelines.run_dir import run_lock
    from pipelines.spark_session import get_spark

    run_dir = Path(run_dir)
    if since:
        _since(since)  # a bad time fails before Spark starts
    target = run_target(run_dir)
    if target != "serve":
        raise ConfigError(
            f"{run_dir} is a '{target}' run: --against scores a serve run",
            hint="run with --set eval.target=serve, or evaluate this run without --against",
        )
    cfg = load_config(run_dir / "config.toml")
    # The run's column mapping and timestamp unit, but not its time range: a serve run
    # cut at ingest.max_ts would otherwise quarantine exactly the events that came after it.
    defaults = IngestConfig()
    for key, value in (
        ("input", str(Path(against).resolve())),
        ("format", fmt or "auto"),
        ("items", ""),
        ("min_ts", defaults.min_ts),
        ("max_ts", defaults.max_ts),
    ):
        set_value(cfg, f"ingest.{key}", value)
    if not Path(against).exists():
        raise ConfigError(f"--against {against}: not found", hint="give the new events' path")
    result = run_ingest(get_spark(cfg.spark), cfg.ingest)
    new = pl.from_arrow(result.events.select("user_id", "item_id", "ts").toArrow())
    result.unpersist()
    n_read = new.height
    if since:
        new = new.filter(pl.col("ts") >= _since(since))
    train = tableio.read_polars(run_dir, "train").select("user_id", "item_id")
    n_items = tableio.read_manifest(run_dir, "items")["rows"]
    metrics, counts = score_against(
        tableio.read_polars(run_dir, "rankings"), new, train, ks, n_items
    )
    counts["events_before_since"] = n_read - new.height
    extra = {
        "against": str(Path(against).resolve()),
        "since": since or "",
        "counts": counts,
        "ingest": result.counts,
    }
    with run_lock(run_dir):
        tableio.write_table(
            run_dir,
            "served_metrics",
            metrics,
            stage="evaluate --against",
            stage_key="",
            inputs={"rankings": tableio.read_manifest(run_dir, "rankings")["fingerprint"]},
            extra=extra,
        )
    return metrics, extra


def _since(text: str):  # -> datetime.datetime (UTC)
    from pipelines.config.validate import parse_timestamp

    t = parse_timestamp(text)
    if t is None:
        raise ConfigError(
            f"--since {text!r} is not an ISO 8601 time", hint="e.g. --since 2026-11-30T00:00:00Z"
        )
    return t
