"""Accuracy metrics of top-K rankings under binary relevance (ranx-style definitions).

Notation, for one user u and cut-off K:

- rel(u, i) = 1 iff (u, i) is in the relevant set (the holdout), else 0;
- R = |relevant items of u| (>= 1 for every evaluated user);
- hits@K = number of relevant items recommended at rank <= K;
- ranks are the `rank` column as given (1 = best, unique per user); recommendations
  beyond rank K are ignored at K, and a user with fewer than K recommendations is
  still divided by K where the formula says so (precision).

Every metric is a function of a few per-(user, K) sufficient statistics computed by
`user_hit_statistics`; the metric functions below turn those columns into one
value per user, and the caller averages them over the users of a segment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

# Output order of the accuracy metrics (the `metric` column of the metrics table).
ACCURACY_METRICS: tuple[str, ...] = ("hr", "recall", "precision", "ndcg", "mrr", "map")

# Columns produced by `user_hit_statistics`.
STAT_COLUMNS: tuple[str, ...] = (
    "n_relevant",
    "hits",
    "dcg",
    "idcg",
    "first_hit_rank",
    "ap_sum",
)


def hit_rate() -> pl.Expr:
    """Hit rate (HR@K): whether at least one relevant item is in the top K.

    HR@K = 1 if hits@K > 0 else 0
    """
    return (pl.col("hits") > 0).cast(pl.Float64)


def recall() -> pl.Expr:
    """Recall@K: share of the user's relevant items that are in the top K.

    Recall@K = hits@K / R
    """
    return pl.col("hits").cast(pl.Float64) / pl.col("n_relevant")


def precision() -> pl.Expr:
    """Precision@K: share of the K slots that hold a relevant item.

    Precision@K = hits@K / K   (K, not the list length: short lists are penalised)
    """
    return pl.col("hits").cast(pl.Float64) / pl.col("k")


def ndcg() -> pl.Expr:
    """Normalized discounted cumulative gain (NDCG@K) with binary gains.

    DCG@K  = sum_{rank <= K, rel = 1} 1 / log2(rank + 1)
    IDCG@K = sum_{i = 1}^{min(R, K)} 1 / log2(i + 1)
    NDCG@K = DCG@K / IDCG@K
    """
    return pl.col("dcg") / pl.col("idcg")


def reciprocal_rank() -> pl.Expr:
    """Reciprocal rank (MRR@K once averaged over users).

    RR@K = 1 / rank of the first relevant item with rank <= K, or 0 if there is none
    """
    return (
        pl.when(pl.col("first_hit_rank").is_not_null())
        .then(1.0 / pl.col("first_hit_rank"))
        .otherwise(0.0)
    )


def average_precision() -> pl.Expr:
    """Average precision (MAP@K once averaged over users).

    AP@K = (sum_{rank <= K, rel = 1} Precision@rank) / min(R, K)
    with Precision@rank = (number of relevant items at rank' <= rank) / rank.
    """
    return pl.col("ap_sum") / pl.min_horizontal(pl.col("n_relevant"), pl.col("k"))


METRIC_EXPRESSIONS: dict[str, pl.Expr] = {
    "hr": hit_rate(),
    "recall": recall(),
    "precision": precision(),
    "ndcg": ndcg(),
    "mrr": reciprocal_rank(),
    "map": average_precision(),
}


def ideal_dcg_table(max_k: int) -> pl.DataFrame:
    """IDCG for every possible number of ideal hits m = min(R, K) in 1..max_k.

    IDCG(m) = sum_{i = 1}^{m} 1 / log2(i + 1); columns `n_ideal` Int64, `idcg` Float64.
    """
    if max_k < 1:
        raise ValueError(f"max_k must be >= 1, got {max_k}")
    # Plain float accumulation keeps the sum order identical to the textbook formula.
    values, total = [], 0.0
    for i in range(1, max_k + 1):
        total += 1.0 / math.log2(i + 1)
        values.append(total)
    return pl.DataFrame(
        {"n_ideal": pl.Series(range(1, max_k + 1), dtype=pl.Int64), "idcg": values},
        schema={"n_ideal": pl.Int64, "idcg": pl.Float64},
    )


def user_hit_statistics(
    recs: pl.DataFrame, relevant: pl.DataFrame, ks: Sequence[int]
) -> pl.DataFrame:
    """Per-(user, K) sufficient statistics of the accuracy metrics.

    `recs` has user_id, item_id, rank (unique per user); `relevant` has distinct
    (user_id, item_id) pairs. One output row per (user of `relevant`, K in `ks`),
    users without recommendations included with zero hits: columns user_id, k (Int32),
    n_relevant, hits, dcg, idcg, first_hit_rank (null without a hit), ap_sum.
    """
    max_k = max(ks)
    # Only recommended *relevant* items contribute to any metric, so the per-user
    # work runs on the (small) set of hits rather than on every recommendation.
    hits = (
        recs.lazy()
        .select("user_id", "item_id", pl.col("rank").cast(pl.Int64))
        .filter(pl.col("rank") <= max_k)
        .join(relevant.lazy().select("user_id", "item_id"), on=["user_id", "item_id"])
        # Number of relevant items at rank' <= rank (ranks are unique per user).
        .with_columns(
            pl.col("rank").rank("ordinal").over("user_id").cast(pl.Int64).alias("cum_hits")
        )
    )
    ks_frame = pl.LazyFrame({"k": pl.Series(sorted(set(ks)), dtype=pl.Int32)})
    per_k = (
        hits.join(ks_frame, how="cross")
        .filter(pl.col("rank") <= pl.col("k"))
        .group_by("user_id", "k")
        .agg(
            pl.len().cast(pl.Int64).alias("hits"),
            # Summed by ascending rank whatever order the join gave the rows: the same
            # table read in another file order gives bit-identical metrics.
            (1.0 / (pl.col("rank") + 1).cast(pl.Float64).log(2)).sort_by("rank").sum().alias("dcg"),
            pl.col("rank").min().alias("first_hit_rank"),
            (pl.col("cum_hits") / pl.col("rank")).sort_by("rank").sum().alias("ap_sum"),
        )
    )
    users = relevant.lazy().group_by("user_id").agg(pl.len().cast(pl.Int64).alias("n_relevant"))
    return (
        users.join(ks_frame, how="cross")
        .with_columns(
            pl.min_horizontal(pl.col("n_relevant"), pl.col("k").cast(pl.Int64)).alias("n_ideal")
        )
        .join(ideal_dcg_table(max_k).lazy(), on="n_ideal", how="left")
        .join(per_k, on=["user_id", "k"], how="left")
        .select(
            "user_id",
            "k",
            "n_relevant",
            pl.col("hits").fill_null(0),
            pl.col("dcg").fill_null(0.0),
            "idcg",
            "first_hit_rank",
            pl.col("ap_sum").fill_null(0.0),
        )
        .collect()
    )


def per_user_accuracy(
    recs: pl.DataFrame, relevant: pl.DataFrame, ks: Sequence[int]
) -> pl.DataFrame:
    """Every accuracy metric per (user, K): columns user_id, k, then ACCURACY_METRICS.

    Users are those of `relevant`; see `user_hit_statistics` for the inputs.
    """
    stats = user_hit_statistics(recs, relevant, ks)
    return stats.select(
        "user_id",
        "k",
        *(METRIC_EXPRESSIONS[name].alias(name) for name in ACCURACY_METRICS),
    )
