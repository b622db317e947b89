"""Evaluate a whole run: its tables against its holdout, label-free metrics of a serve run,
and a serve run's rankings against the events that arrived after it.

* `evaluate_run`: test/valid runs, every table (and every candidate source alone) against
  the holdout rows of the run's target split.
* `serve_metrics_of_buckets`: what needs no labels (coverage, Gini, novelty, user and item counts).
* `evaluate_against`: each user's first event in a new log after the run's last event is
  the target of that user's served rankings; users without such events, and the stale
  events at or before the run's last one, are counted, not scored.

Tables are read one bucket of users at a time (buckets.py), at most about
eval.max_rows_in_memory rows each; only exact sums of the metrics and item counts are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from pipelines import tableio
from pipelines.errors import ConfigError, TableNotCommittedError, WalkRankError
from pipelines.evaluation.beyond_accuracy import (
    ExposureSum,
    beyond_accuracy_of_exposure,
    exposure_by_k,
    self_information_of_counts,
)
from pipelines.evaluation.buckets import Bucket, n_buckets, read_buckets
from pipelines.evaluation.evaluate import METRICS_SCHEMA, RankingEvaluator
from pipelines.evaluation.train_stats import TrainStats, train_stats_of_buckets
from pipelines.storage import Location, as_location
from schemas import score_column

log = logging.getLogger(__name__)

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
    run_dir: str | Path,
    tables: list[str],
    ks: list[int],
    target: str,
    max_rows_in_memory: int | None = None,
) -> pl.DataFrame:
    """Metrics of the given tables of a run: against its holdout rows of split `target`, or
    label-free ones (`serve_metrics_of_buckets`) when the run is a serve run.

    Every table is read in buckets of users of about `max_rows_in_memory` rows (default:
    eval.max_rows_in_memory), so no table is ever held whole; the metrics do not depend on
    the number of buckets."""
    check_split_target(run_dir, target)
    max_rows = _max_rows(max_rows_in_memory)
    n_items = tableio.read_manifest(run_dir, "items")["rows"]
    committed = [t for t in tables if tableio.is_committed(run_dir, t)]
    if not committed:
        raise TableNotCommittedError(f"none of {tables} is committed in {run_dir}")
    for t in [*committed, "train", "holdout"]:
        tableio.verify_table(run_dir, t)  # a damaged table: one line naming it, not a trace
    stats = run_train_stats(run_dir, max_rows)
    if target == "serve":
        return pl.concat(
            [
                serve_metrics_of_buckets(
                    _table_buckets(run_dir, t, max_rows, max_rank=max(ks)), stats, ks, t, n_items
                )
                for t in committed
            ]
        )
    holdout = pl.from_arrow(
        tableio.read_arrow(run_dir, "holdout", columns=["user_id", "item_id", "split"])
    ).filter(pl.col("split") == target)
    if holdout.height == 0:
        raise WalkRankError(
            f"no holdout rows with split '{target}' in {run_dir}",
            hint="users need at least split.min_events events to be held out; check the split stage",
        )
    relevant = holdout.select("user_id", "item_id")
    frames = []
    for table in committed:
        frames.extend(_evaluate_table(run_dir, table, relevant, stats, ks, n_items, max_rows))
    return pl.concat(frames)


def _max_rows(max_rows_in_memory: int | None) -> int:
    if max_rows_in_memory is None:
        from pipelines.config import EvalConfig

        return EvalConfig().max_rows_in_memory
    return max_rows_in_memory


def _table_buckets(
    run_dir: str | Path,
    table: str,
    max_rows: int,
    columns: list[str] | None = None,
    max_rank: int | None = None,
) -> Iterator[Bucket]:
    """A per-user table of the run read in buckets of about `max_rows` rows (from its row
    count); with `max_rank`, only rows ranked at most that (nothing deeper is scored)."""
    n = n_buckets(tableio.read_manifest(run_dir, table)["rows"], max_rows)
    scan = tableio.scan_polars(run_dir, table).select(columns or ["user_id", "item_id", "rank"])
    if max_rank is not None:
        # Null ranks stay, so the evaluator still rejects them as it did with the whole table.
        scan = scan.filter((pl.col("rank") <= max_rank) | pl.col("rank").is_null())
    read = 0
    for bucket in read_buckets(scan, n):
        read += 1
        yield bucket
    log.info("evaluate: read %s of %s in %d bucket(s) of users", table, run_dir, read)


def run_train_stats(run_dir: str | Path, max_rows_in_memory: int | None = None) -> TrainStats:
    """The counts of the run's train table, read in buckets of users."""
    buckets = _table_buckets(
        run_dir, "train", _max_rows(max_rows_in_memory), columns=["user_id", "item_id"]
    )
    return train_stats_of_buckets(bucket.rows for bucket in buckets)


def _evaluate_table(
    run_dir: str | Path,
    table: str,
    relevant: pl.DataFrame,
    stats: TrainStats,
    ks: list[int],
    n_items: int,
    max_rows: int,
) -> list[pl.DataFrame]:
    """Metrics of one table against `relevant`; for candidates, also of every source alone
    (ranked by its own score column), all from one bucketed pass over the table."""
    from pipelines.evaluation.per_source import source_ranking

    sources = tableio.candidate_sources(run_dir) if table == "candidates" else []
    evaluators = {table: RankingEvaluator(ks, stats)}
    evaluators |= {f"candidates:{s}": RankingEvaluator(ks, stats) for s in sources}
    columns = ["user_id", "item_id", "rank", *map(score_column, sources)]
    # A source's own top-k can sit anywhere in the fused list, so with sources every row is read.
    max_rank = None if sources else max(ks)
    for bucket in _table_buckets(run_dir, table, max_rows, columns, max_rank):
        holdout = bucket.users_of(relevant)
        evaluators[table].add(bucket.rows, holdout)
        for source in sources:
            evaluators[f"candidates:{source}"].add(source_ranking(bucket.rows, source), holdout)
    return [evaluator.metrics(name, n_items) for name, evaluator in evaluators.items()]


def serve_metrics_of_buckets(
    buckets: Iterable[Bucket], stats: TrainStats, ks: list[int], table: str, n_items: int
) -> pl.DataFrame:
    """Label-free metrics of every user's top-k (coverage, Gini, novelty at each k, and the
    counts users, catalog_items and recommended_items at the largest k) of a table given as
    disjoint buckets of users: users and item
    exposures add up over buckets, and every metric is derived from those sums."""
    n_users, summed = 0, ExposureSum()
    for bucket in buckets:
        top = bucket.rows.select("user_id", "item_id", "rank").filter(pl.col("rank") <= max(ks))
        n_users += top.get_column("user_id").n_unique()
        summed.add(exposure_by_k(top, ks))
    exposure = summed.total()
    if exposure is None:
        raise ValueError(f"no bucket of {table} was read")
    counts = {
        "users": n_users,
        "catalog_items": n_items,
        "recommended_items": exposure.filter(pl.col("k") == max(ks)).height,
    }
    info, unseen = self_information_of_counts(
        stats.items.select("item_id", "n_users"), stats.n_users
    )
    rows = beyond_accuracy_of_exposure(exposure, ks, info, unseen, n_items).with_columns(
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


def score_against_buckets(
    buckets: Iterable[Bucket],
    new_events: pl.DataFrame,
    stats: TrainStats,
    ks: list[int],
    n_items: int,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Served rankings, given as disjoint buckets of users, against new events: (metrics,
    counts). Scored users are those with rankings and at least one new event; the others are
    counted, not scored. One pass: a bucket's
    ranked users are exactly the ranked users whose targets fall in that bucket)."""
    targets = first_new_events(new_events)
    evaluator = RankingEvaluator(ks, stats)
    n_ranked = n_scored = 0
    for bucket in buckets:
        ranked = bucket.rows.select("user_id").unique()
        scored = bucket.users_of(targets).join(ranked, on="user_id", how="semi")
        n_ranked += ranked.height
        n_scored += scored.height
        evaluator.add(bucket.rows.select("user_id", "item_id", "rank"), scored)
    counts = {
        "new_events": new_events.height,
        "users_with_rankings": n_ranked,
        "users_with_new_events": targets.height,
        "users_scored": n_scored,
        "users_without_new_events": n_ranked - n_scored,
        "new_users_without_rankings": targets.height - n_scored,
    }
    if n_scored == 0:
        raise WalkRankError(
            "no user of the run has an event in the new log: nothing to score",
            hint="pass the events that arrived after the run, with the same user ids",
        )
    return evaluator.metrics("rankings", n_items), counts


def scored_note(counts: dict[str, int]) -> str:
    """Who was scored and who was only counted, for the printed summary and the manifest."""
    return (
        f"{counts['users_scored']:,} users scored (first new event each); "
        f"{counts['users_without_new_events']:,} with rankings but no new event and "
        f"{counts['new_users_without_rankings']:,} new users without rankings, counted not scored"
    )


def evaluate_against(
    run_dir: str | Path,
    against: str,
    fmt: str | None,
    ks: list[int],
    since: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Score a serve run's rankings against a new event log (read with the run's ingest
    settings, any ingest format) and commit the result as the run's `served_metrics`. With
    `since`, events before that ISO time are dropped; events at or before the run's last
    event are stale, counted and not scored (new_events.py)."""
    from pipelines.evaluation.new_events import events_to_score, parse_since, stale_note
    from pipelines.ingest import run_ingest
    from pipelines.ranker.latest import data_end, when
    from pipelines.run_dir import run_lock
    from pipelines.spark_session import get_spark

    run_dir = as_location(run_dir)
    since_t = parse_since(since) if since is not None else None  # before Spark starts
    check_serve_run(run_dir)
    end = data_end(run_dir)
    if end is None:
        raise TableNotCommittedError(
            f"{run_dir} has no committed events table: its last event, after which events "
            "are new to it, is unknown"
        )
    cfg = _against_config(run_dir, against, fmt)
    result = run_ingest(get_spark(cfg.spark, cfg.ingest.input), cfg.ingest)
    read = pl.from_arrow(result.events.select("user_id", "item_id", "ts").toArrow())
    result.unpersist()
    new, dropped = events_to_score(read, since_t, end)
    if new.height == 0:
        raise WalkRankError(
            f"none of the {read.height:,} events of {against} is new to {run_dir}: "
            f"{dropped['events_before_since']:,} before --since, {dropped['stale_events']:,} "
            f"at or before the run's last event ({when(end)})",
            hint="pass the events that arrived after the run",
        )
    max_rows = cfg.eval.max_rows_in_memory
    metrics, counts = score_against_buckets(
        _table_buckets(run_dir, "rankings", max_rows),
        new,
        run_train_stats(run_dir, max_rows),
        ks,
        tableio.read_manifest(run_dir, "items")["rows"],
    )
    extra = {
        "against": cfg.ingest.input,
        "since": since or "",
        "data_end": when(end),
        "counts": counts | dropped,
        "scored": scored_note(counts),
        "stale": stale_note(dropped["stale_events"], when(end)),
        "ingest": result.counts,
    }
    with run_lock(run_dir, cfg.run.lock, cfg.run.lease_seconds):
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


def check_serve_run(run_dir: Location) -> None:
    """Refuse --against on a run split for a holdout (eval.target test or valid): its
    rankings predict its held-out events from a history cut before them, so events after
    the run are not what they were made for."""
    target = run_target(run_dir)
    if target != "serve":
        raise ConfigError(
            f"{run_dir} is a '{target}' run: its rankings were made for its held-out "
            f"'{target}' events, not for events after the run; --against scores a serve run",
            hint=f"evaluate it with `walkrank evaluate {run_dir}` (no --against), or run the "
            "pipeline again with --set eval.target=serve",
        )


def _against_config(run_dir: Location, against: str, fmt: str | None):  # -> Config
    """The run's config, reading `against` with the run's column mapping and timestamp unit,
    but not its time range: a serve run cut at ingest.max_ts would otherwise quarantine
    exactly the events that came after it."""
    from pipelines.config import IngestConfig, load_config, set_value

    against_loc = Location(against)
    if not against.strip() or not against_loc.exists():
        raise ConfigError(f"--against {against}: not found", hint="give the new events' path")
    cfg = load_config(run_dir / "config.toml", check_paths=False)
    defaults = IngestConfig()
    for key, value in (
        ("input", against_loc.uri),
        ("format", fmt or "auto"),
        ("items", ""),
        ("min_ts", defaults.min_ts),
        ("max_ts", defaults.max_ts),
    ):
        set_value(cfg, f"ingest.{key}", value)
    return cfg
