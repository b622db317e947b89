"""The whole-table forms of the bucketed evaluation functions (one bucket: every user), the
references the bucketed ones are tested against and what unit tests call on small frames."""

from __future__ import annotations

import polars as pl

from pipelines.evaluation.buckets import Bucket
from pipelines.evaluation.per_source import overlap_counts, overlap_of_counts
from pipelines.evaluation.run import score_against_buckets, serve_metrics_of_buckets
from pipelines.evaluation.train_stats import train_stats


def serve_metrics(
    recs: pl.DataFrame, train: pl.DataFrame, ks: list[int], table: str, n_items: int
) -> pl.DataFrame:
    """Label-free metrics of every user's top-k: coverage, Gini, novelty at each k, and the
    counts users (with rankings), catalog_items and recommended_items (at the largest k)."""
    stats = train_stats(train.select("user_id", "item_id"))
    return serve_metrics_of_buckets([Bucket(0, 1, recs)], stats, ks, table, n_items)


def score_against(
    rankings: pl.DataFrame,
    new_events: pl.DataFrame,
    train: pl.DataFrame,
    ks: list[int],
    n_items: int,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Served rankings against new events: (metrics, counts). Scored users are those with
    rankings and at least one new event; the others are counted, not scored."""
    stats = train_stats(train.select("user_id", "item_id"))
    return score_against_buckets([Bucket(0, 1, rankings)], new_events, stats, ks, n_items)


def source_overlap(cands: pl.DataFrame, names: list[str], k: int) -> pl.DataFrame:
    """Pairwise overlap of the sources' top-k lists: columns source, other, overlap.

    overlap(a, b) = Σ_u |top_k(a, u) ∩ top_k(b, u)| / Σ_u |top_k(a, u)|, the share of a's
    top-k slots that b also has in its top-k (asymmetric; 1 on the diagonal).
    """
    return overlap_of_counts(overlap_counts(cands, names, k), names)
