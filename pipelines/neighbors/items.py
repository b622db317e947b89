"""item_neighbors: activity-weighted co-occurrence cosine.

Rules (``NeighborsConfig``):

1. History. Each user's train events are ordered by ts (ties: item_id), newest first; only the
   last ``max_history`` events count, so one very active user adds at most max_history² pairs.
   H_u is the set of distinct items among them.
2. Weight. w_u = 1 / log2(1 + |H_u|): a pair from a user with a short history says more than
   one from a user who touched everything. Summed in fixed point (udfs/cooccurrence.py), so
   the sums are exact and the table does not depend on how the work was split.
3. Similarity. With x_ui = [i in H_u], C_ij = Σ_u w_u x_ui x_uj and
   sim(i, j) = C_ij / sqrt(C_ii · C_jj) (cosine of the columns of diag(sqrt(w)) X).
4. Support. A pair needs n_ij = Σ_u x_ui x_uj >= ``min_support`` users; i == j is never kept.
5. Top. Each item keeps its ``item_k`` most similar items (sim desc, ties: smaller index).

Two strategies give bit-identical tables:
- ``broadcast``: the histories go to every task as CSR (user -> items and item -> users,
  ~16 bytes per history row in every Python worker, plus 16 per user and per item); each task
  computes whole rows of its share of the items with the compiled kernel. No shuffle but the
  output's; the work Σ_u |H_u|² is split over tasks by each item's share of it.
- ``spark``: a self-join of the histories by user and a shuffle of the pairs by (i, j); no
  table is held whole anywhere, but the pairs (users × up to max_history² rows) are shuffled.
``auto`` broadcasts up to ``item_broadcast_max_rows`` history rows.
"""

from __future__ import annotations

import math

import numpy as np

from udfs.cooccurrence import (
    cooccurrence_topk,
    fixed_point_weights,
    item_sets_csr,
    item_weight_sums,
)

OUT_SCHEMA = "item_idx int, neighbor_idx int, sim double, rank int"

#: Kernel additions per broadcast task (about a second each): the item range is split into at
#: least this many times fewer tasks than Σ_u |H_u|², and never fewer than the partitions.
WORK_PER_TASK = 200_000_000


def capped_histories(train, max_history: int):
    """DataFrame[user_idx, item_idx]: the distinct items of each user's last events."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("user_idx").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    return (
        train.withColumn("_p", F.row_number().over(order))
        .filter(F.col("_p") <= max_history)
        .select("user_idx", "item_idx")
        .distinct()
    )


def history_weights(max_history: int, n_users: int) -> np.ndarray:
    """int64 w for |H_u| = 0 … max_history, in the fixed point of `fixed_point_weights`."""
    w = [0.0] + [1.0 / math.log2(1.0 + n) for n in range(1, max_history + 1)]
    return fixed_point_weights(np.array(w), n_users)


def choose_strategy(strategy: str, history_rows: int, max_rows: int) -> tuple[str, str]:
    """(strategy, why) for `item_strategy` and the number of history rows."""
    if strategy != "auto":
        return strategy, "set in the config"
    if history_rows <= max_rows:
        return "broadcast", f"{history_rows:,} history rows <= item_broadcast_max_rows"
    return "spark", f"{history_rows:,} history rows > item_broadcast_max_rows={max_rows:,}"


def item_neighbors(
    histories,
    *,
    max_history: int,
    min_support: int,
    item_k: int,
    strategy: str = "auto",
    broadcast_max_rows: int = 100_000_000,
    partitions: int | None = None,
):
    """`capped_histories` (persist it: it is counted, then read) -> (DataFrame[item_idx,
    neighbor_idx, sim, rank] (the item_neighbors contract), info: strategy, why,
    history_rows). `partitions`: at least this many broadcast tasks (default: the Spark
    context's default parallelism)."""
    rows = histories.count()
    chosen, why = choose_strategy(strategy, rows, broadcast_max_rows)
    info = {"strategy": chosen, "why": why, "history_rows": rows}
    if chosen == "broadcast":
        return _broadcast(histories, max_history, min_support, item_k, partitions), info
    return _spark_join(histories, max_history, min_support, item_k), info


def _broadcast(hist, max_history: int, min_support: int, item_k: int, partitions: int | None):
    import pyarrow as pa

    spark = hist.sparkSession
    table = hist.toArrow()
    users = table.column("user_idx").to_numpy().astype(np.int64)
    items = table.column("item_idx").to_numpy().astype(np.int64)
    del table
    n_users = int(users.max()) + 1 if users.size else 0
    n_items = int(items.max()) + 1 if items.size else 0
    if n_items == 0:
        return spark.createDataFrame([], OUT_SCHEMA)
    user_indptr, user_items, item_indptr, item_users = item_sets_csr(users, items, n_users, n_items)
    sizes = np.diff(user_indptr)
    wtab = history_weights(max_history, int(np.count_nonzero(sizes)))
    user_weight = wtab[sizes]
    norms = item_weight_sums(item_indptr, item_users, user_weight)
    # Item i's row costs Σ_{u ∋ i} |H_u| additions: equal shares of that, not of items.
    work = np.cumsum(np.bincount(items, weights=sizes[users], minlength=n_items))
    del users, items
    tasks = max(
        partitions or spark.sparkContext.defaultParallelism,
        math.ceil(work[-1] / WORK_PER_TASK),
    )
    cuts = np.searchsorted(work, work[-1] * np.arange(1, tasks) / tasks, side="right")
    bounds = np.unique(np.concatenate(([0], cuts, [n_items])))
    ranges = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    bc = spark.sparkContext.broadcast(
        (user_indptr, user_items, item_indptr, item_users, user_weight, norms)
    )

    def run(batches):
        csr = bc.value
        for rb in batches:
            for lo, hi in zip(rb.column(0).to_pylist(), rb.column(1).to_pylist(), strict=True):
                i, j, s, r = cooccurrence_topk(
                    *csr, np.arange(lo, hi), min_support=min_support, k=item_k
                )
                yield pa.RecordBatch.from_arrays(
                    [pa.array(i), pa.array(j), pa.array(s), pa.array(r)],
                    names=["item_idx", "neighbor_idx", "sim", "rank"],
                )

    return (
        spark.sparkContext.parallelize(ranges, len(ranges))
        .toDF("lo long, hi long")
        .mapInArrow(run, OUT_SCHEMA)
    )


def _spark_join(hist, max_history: int, min_support: int, item_k: int):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n_users = hist.select("user_idx").distinct().count()
    wtab = F.array(*[F.lit(int(w)) for w in history_weights(max_history, n_users)])
    size = F.count(F.lit(1)).over(Window.partitionBy("user_idx"))
    hist = hist.withColumn("w", wtab[size])
    norms = hist.groupBy("item_idx").agg(F.sum("w").cast("double").alias("c"))
    a = hist.select("user_idx", F.col("item_idx").alias("i"), "w")
    b = hist.select("user_idx", F.col("item_idx").alias("j"))
    pairs = (
        a.join(b, "user_idx")
        .filter(F.col("i") != F.col("j"))
        .groupBy("i", "j")
        .agg(F.sum("w").cast("double").alias("cij"), F.count(F.lit(1)).alias("n"))
        .filter(F.col("n") >= min_support)
    )
    ni = norms.select(F.col("item_idx").alias("i"), F.col("c").alias("ci"))
    nj = norms.select(F.col("item_idx").alias("j"), F.col("c").alias("cj"))
    sims = (
        pairs.join(ni, "i")
        .join(nj, "j")
        .select("i", "j", (F.col("cij") / F.sqrt(F.col("ci") * F.col("cj"))).alias("sim"))
    )
    w = Window.partitionBy("i").orderBy(F.col("sim").desc(), F.col("j").asc())
    return (
        sims.withColumn("rank", F.row_number().over(w).cast("int"))
        .filter(F.col("rank") <= item_k)
        .select(
            F.col("i").cast("int").alias("item_idx"),
            F.col("j").cast("int").alias("neighbor_idx"),
            F.col("sim").cast("double").alias("sim"),
            "rank",
        )
    )
