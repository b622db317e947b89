"""Features of every (user, candidate) pair, on Spark, from one run's tables.

The learned ranker's inputs; the same function serves the fit pass (labels attached later)
and the run being ranked, so both see identical definitions. Times are in days before the
train table's last event ("now" of the run). Missing values are null, never 0: LightGBM
treats null as its own branch, 0 as a value.

Per source s of the candidates table:
  score_<s>        the source's score (null: s did not propose the item)
  rank_<s>         its rank among the user's candidates by that score (1 = best)
Per pair:
  fused_score, fused_rank    the candidates table's own score and rank
  n_sources                  how many sources proposed the item
  trans_last1, trans_last2   graph_edges.prob from the user's last / second-to-last train
                             item to the candidate (null: no such edge or no graph)
Per item (train events):
  item_pop                   events of the item (0 when none)
  item_pop_recent            its events in the latest recent_fraction of the train time span
  item_trend                 item_pop_recent / item_pop (null when item_pop = 0)
  item_age                   days since its first event (null when none)
Per user (train events):
  user_hist_len              events of the user
  user_since_last            days since the user's last event
  user_repeat_rate           1 - distinct items / events
With LLM scores (rank.llm_feature):
  llm_score                  the llm_scores table's score of the pair (null: not scored)
With item text embeddings (rank.text_features):
  text_cos                   cosine between the item's embedding and the user's history
                             embedding (recency-weighted, half-life rank.text_half_life events);
                             null when the item or every history item has no text
With summary embeddings (rank.summary_feature):
  summary_cos                cosine between the item's embedding and the embedding of the
                             user's LLM summary; null when the user has no summary or the
                             item no text

Cost: one shuffle of the candidates rows (users x top_n) by user and one sort by user within
its partitions; the per-user joins keep that partitioning, per-item columns come by
broadcast, and the per-user columns (rank_<s>, trans_last1/2) from one `mapInArrow` pass
over each partition's users (udfs/pair_features.py; rank scores in the same pass).
Aggregations over train. Collected to the driver: two scalars (the train's first and last
time) and the graph's edges (16 bytes per edge, to broadcast them).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas import score_column

DAY = 86400.0
PAIR = ("fused_score", "fused_rank", "n_sources", "trans_last1", "trans_last2")
PAIR_KEY = ["user_id", "item_id"]
ITEM = ("item_pop", "item_pop_recent", "item_trend", "item_age")
USER = ("user_hist_len", "user_since_last", "user_repeat_rate")


TEXT = ("text_cos",)
LLM = ("llm_score",)
SUMMARY = ("summary_cos",)


def feature_names(
    sources: Sequence[str], text: bool = False, llm: bool = False, summary: bool = False
) -> list[str]:
    """The feature columns, in the order the model sees them."""
    per_source = [c for s in sources for c in (score_column(s), f"rank_{s}")]
    optional = [*(TEXT if text else ()), *(LLM if llm else ()), *(SUMMARY if summary else ())]
    return [*per_source, *PAIR, *ITEM, *USER, *optional]


#: Candidate rows per partition of rank's pass: each task sorts its rows by user in memory,
#: so the partition's size, not the table's, must bound the sort (a few default partitions
#: of a large table spill: benchmarks/RESULTS.md has the run).
WINDOW_ROWS = 1_000_000


def window_partitions(candidate_rows: int, default: int) -> int:
    """Partitions by user for rank's pass over `candidate_rows` rows: about WINDOW_ROWS
    each, never fewer than `default` (spark.shuffle_partitions)."""
    return max(default, -(-candidate_rows // WINDOW_ROWS))


def time_bounds(train) -> tuple[float, float]:
    """(first, last) event time of train, in epoch seconds."""
    from pyspark.sql import functions as F

    row = train.select(
        F.min(F.col("ts").cast("double")).alias("lo"), F.max(F.col("ts").cast("double")).alias("hi")
    ).first()
    return (row["lo"] or 0.0), (row["hi"] or 0.0)


def candidate_features(
    candidates, train, items, graph_edges, sources: Sequence[str], recent_fraction: float,
    *args, **kwargs,
):  # fmt: skip
    """DataFrame[user_id, item_id, *feature_names(sources, text, llm, summary)] (doubles), one
    per candidate; the arguments are `pair_rows`'."""
    from udfs.pair_features import pair_feature_batches

    rows, edges, names = pair_rows(
        candidates, train, items, graph_edges, sources, recent_fraction, *args, **kwargs
    )
    out = ["user_id", "item_id", *names]
    return rows.mapInArrow(
        lambda batches: pair_feature_batches(batches, sources, edges.value, out),
        ", ".join(["user_id string", "item_id string", *(f"{n} double" for n in names)]),
    )


def pair_rows(
    candidates,
    train,
    items,
    graph_edges,
    sources: Sequence[str],
    recent_fraction: float,
    item_vecs=None,
    half_life: float = 10.0,
    llm_scores=None,
    summary_embeddings=None,
    text: bool = True,
    partitions: int | None = None,
):
    """candidates (contract `candidates`), train (events contract), items, graph_edges or None,
    item_vecs (items x d array by item_idx, zero rows: no text) or None, llm_scores or None,
    summary_embeddings or None -> (rows, the graph's edge table broadcast (its value None
    without a graph), feature names). text_cos is computed when item_vecs is given and
    `text`; summary_cos needs item_vecs too.

    rows: one per candidate with every feature that Spark computes (per item and per user by
    join, the optional text, LLM and summary ones) and what the per-user kernel needs (_l1,
    _l2, _dst), in `partitions` partitions by user (default: spark.sql.shuffle.partitions;
    see `window_partitions`), sorted by user_id within them. udfs/pair_features.py adds
    rank_<s> and trans_last1/2."""
    from pyspark.sql import functions as F

    item_stats, user_stats = _history_stats(train, recent_fraction)
    out = candidates.select(
        "user_id",
        "item_id",
        F.col("score").cast("double").alias("fused_score"),
        F.col("rank").cast("double").alias("fused_rank"),
        F.size("sources").cast("double").alias("n_sources"),
        *[F.col(score_column(s)).cast("double").alias(score_column(s)) for s in sources],
    )
    n = partitions or int(candidates.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    # One shuffle of the candidate rows, by user: the per-user joins keep it, the per-item
    # ones are broadcasts, and the kernel's sort by user is within these partitions.
    out = out.repartition(n, "user_id")
    out = out.join(user_stats, "user_id", "left")
    out = out.join(_last_two(train), "user_id", "left")
    out = out.join(F.broadcast(item_stats), "item_id", "left")
    out = out.withColumn("item_pop", F.coalesce("item_pop", F.lit(0.0)))
    out = out.withColumn("item_pop_recent", F.coalesce("_recent", F.lit(0.0))).withColumn(
        "item_trend", F.when(F.col("item_pop") > 0, F.col("item_pop_recent") / F.col("item_pop"))
    )
    out = out.join(
        F.broadcast(items.select("item_id", F.col("item_idx").alias("_dst"))), "item_id", "left"
    )
    text = text and item_vecs is not None
    if summary_embeddings is not None and item_vecs is None:
        raise ValueError("summary_cos needs the item vectors (item_vecs)")
    pair_joins = text or llm_scores is not None or summary_embeddings is not None
    lists = _candidate_lists(out) if text or summary_embeddings is not None else None
    if text:
        out = out.join(_text_affinity(lists, train, item_vecs, half_life), PAIR_KEY, "left")
    if llm_scores is not None:
        llm = llm_scores.select("user_id", "item_id", F.col("llm_score").cast("double"))
        out = out.join(llm.dropDuplicates(PAIR_KEY), PAIR_KEY, "left")
    if summary_embeddings is not None:
        out = out.join(_summary_affinity(lists, summary_embeddings, item_vecs), PAIR_KEY, "left")
    if pair_joins:  # joined by (user, item): back to the partitions by user
        out = out.repartition(n, "user_id")
    names = feature_names(sources, text, llm_scores is not None, summary_embeddings is not None)
    edges = _broadcast_edges(candidates.sparkSession, graph_edges)
    return out.sortWithinPartitions("user_id"), edges, names


def _history_stats(train, recent_fraction: float):
    """(DataFrame[item_id, item_pop, _recent, item_age], DataFrame[user_id, user_hist_len,
    user_since_last, user_repeat_rate]) from the training events; ages in days before the
    last event, `_recent` counts the last `recent_fraction` of the time span."""
    from pyspark.sql import functions as F

    lo, hi = time_bounds(train)
    recent_from = lo + (1.0 - recent_fraction) * (hi - lo)
    secs = F.col("ts").cast("double")
    item_stats = train.groupBy("item_id").agg(
        F.count(F.lit(1)).cast("double").alias("item_pop"),
        F.sum(F.when(secs >= F.lit(recent_from), 1).otherwise(0)).cast("double").alias("_recent"),
        ((F.lit(hi) - F.min(secs)) / DAY).alias("item_age"),
    )
    user_stats = train.groupBy("user_id").agg(
        F.count(F.lit(1)).cast("double").alias("user_hist_len"),
        ((F.lit(hi) - F.max(secs)) / DAY).alias("user_since_last"),
        (1.0 - F.countDistinct("item_id") / F.count(F.lit(1))).alias("user_repeat_rate"),
    )
    return item_stats, user_stats


def _broadcast_edges(spark, graph_edges):
    """The graph's edge table (udfs/edge_lookup.py) as a broadcast; its value is None without
    a graph."""
    from udfs.edge_lookup import edge_table

    edges = None
    if graph_edges is not None:
        e = graph_edges.select("src", "dst", "prob").toArrow()
        edges = edge_table(*(e.column(c).to_numpy() for c in ("src", "dst", "prob")))
    return spark.sparkContext.broadcast(edges)


def _candidate_lists(pairs):
    """DataFrame[user_id, cand_id, cand_idx]: each user's candidates as two lists."""
    from pyspark.sql import functions as F

    return pairs.groupBy("user_id").agg(
        F.collect_list("item_id").alias("cand_id"), F.collect_list("_dst").alias("cand_idx")
    )


def _summary_affinity(lists, summary_embeddings, item_vecs):
    """DataFrame[user_id, item_id, summary_cos] of the users with a summary embedding: one
    task row per user (udfs/text_vectors.py), the item vectors broadcast once."""
    from udfs.text_vectors import summary_affinity_batches

    vecs = lists.sparkSession.sparkContext.broadcast(item_vecs)
    users = summary_embeddings.select("user_id", "embedding").dropDuplicates(["user_id"])
    return lists.join(users, "user_id").mapInArrow(
        lambda it: summary_affinity_batches(it, vecs.value),
        "user_id string, item_id string, summary_cos double",
    )


def _text_affinity(lists, train, item_vecs, half_life: float):
    """DataFrame[user_id, item_id, text_cos]: one task computes a user's history vector once
    and its cosine with each of the user's candidates (udfs/text_vectors.py), the item
    vectors broadcast once."""
    from pyspark.sql import functions as F

    from udfs.text_vectors import history_affinity_batches

    vecs = lists.sparkSession.sparkContext.broadcast(item_vecs)
    hist = train.groupBy("user_id").agg(
        F.sort_array(F.collect_list(F.struct("ts", "item_id", "item_idx"))).alias("_h")
    )
    hist = hist.select("user_id", F.col("_h.item_idx").alias("hist"))
    return lists.join(hist, "user_id", "left").mapInArrow(
        lambda it: history_affinity_batches(it, vecs.value, half_life),
        "user_id string, item_id string, text_cos double",
    )


def _last_two(train):
    """DataFrame[user_id, _l1, _l2]: the item_idx of each user's last and second-to-last
    train event (ties in time broken by item_id, as the split breaks them), the sources of
    trans_last1/2."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user_id").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    return (
        train.withColumn("_pos", F.row_number().over(w))
        .filter(F.col("_pos") <= 2)
        .groupBy("user_id")
        .agg(
            F.max(F.when(F.col("_pos") == 1, F.col("item_idx"))).alias("_l1"),
            F.max(F.when(F.col("_pos") == 2, F.col("item_idx"))).alias("_l2"),
        )
    )
