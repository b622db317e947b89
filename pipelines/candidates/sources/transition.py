"""transition: short walks on the item-transition graph from the user's last items.

The training-free graph heuristic of "An Embarrassingly Simple Graph Heuristic Reveals
Shortcut-Solvable Benchmarks for Sequential Recommendation" (2026): the next item is likely
a few transitions away from the last one or two. With seed weights s (the last
`last` train events, weight last_decay**p, summing to 1; settings `candidates.transition`) and P the
row-stochastic graph_edges.prob matrix:

    score(u, j) = Σ_i s_i · T(i, j),  T(i, ·) = Σ_{h=1..hops} hop_decay**(h-1) · e_i P^h

i.e. the probability of the paths of length h from the seeds to j. T is computed once per
seed item (not per user) by `udfs.multihop` on executors, with the graph broadcast as CSR;
each item keeps its `beam` heaviest frontier entries between hops and its top
`per_source` rows of T. T is then collected as CSR and the users' sums run as the weighted
row-sum kernel (pipelines/candidates/broadcast_topk.py): ≈ 16 · n_seeds · per_source bytes
broadcast, ~1.6 GB at 1M seed items and per_source 100, where it stops being sensible (join
T partitioned by src instead).
"""

from __future__ import annotations

import numpy as np

from pipelines.candidates.broadcast_topk import RowSum
from pipelines.candidates.inputs import SourceInputs

# Item -> item top-k scores: the shape of item_ppr.
SCHEMA = "src int, dst int, score double, rank int"


def multi_hop_table(
    spark, edges, seeds: np.ndarray, n_items: int, *, hops, hop_decay, beam, k, batch=256
):
    """DataFrame[src, dst, score, rank]: top-k T(i, ·) of every seed item i."""
    import pyarrow as pa

    from udfs.csr import csr_from_edges

    indptr, indices, prob = csr_from_edges(
        edges.column("src").to_numpy(),
        edges.column("dst").to_numpy(),
        edges.column("prob").to_numpy(),
        n_items,
    )
    sc = spark.sparkContext
    bc = sc.broadcast((indptr, indices, prob))
    seeds = np.sort(np.asarray(seeds, dtype=np.int32))
    batches = [(seeds[o : o + batch].tolist(),) for o in range(0, len(seeds), batch)]
    n_parts = max(1, min(len(batches), sc.defaultParallelism * 2))
    work = spark.createDataFrame(sc.parallelize(batches, n_parts), "sources array<int>")

    def run(rbs):
        from udfs.multihop import multi_hop_topk

        ip, ix, pr = bc.value
        for rb in rbs:
            col = rb.column(0)
            for r in range(rb.num_rows):
                srcs = np.asarray(col[r].as_py(), dtype=np.int64)
                s, d, v, rank = multi_hop_topk(
                    ip, ix, pr, srcs, hops=hops, hop_decay=hop_decay, beam=beam, k=k
                )
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array(s, pa.int32()),
                        pa.array(d, pa.int32()),
                        pa.array(v, pa.float64()),
                        pa.array(rank, pa.int32()),
                    ],
                    names=["src", "dst", "score", "rank"],
                )

    return work.mapInArrow(run, SCHEMA)


def transition_kernel(inputs: SourceInputs, tables: dict, settings) -> RowSum:
    """Σ_i s_i · T(i, ·) over the last `settings.last` items in kernel form: T computed for
    the users' seed items, collected to the driver as CSR (≈ 16 bytes per entry, at most
    n_items · per_source entries: the size of item_ppr at top_k = per_source)."""
    from pyspark.sql import functions as F

    from pipelines.candidates.broadcast_topk import csr_table
    from pipelines.candidates.recent import recent_item_weights

    weights = recent_item_weights(inputs.train, settings.last, settings.last_decay).persist()
    seeds = np.asarray(
        [r[0] for r in weights.select("item_idx").distinct().collect()], dtype=np.int32
    )
    table = multi_hop_table(
        inputs.spark,
        inputs.read_arrow("graph_edges", ["src", "dst", "prob"]),
        seeds,
        inputs.n_items,
        hops=settings.hops,
        hop_decay=settings.hop_decay,
        beam=settings.beam,
        k=inputs.per_source,
    ).toArrow()
    entries = weights.select("user_idx", F.col("item_idx").alias("row"), F.col("w").alias("weight"))
    return RowSum(
        entries, csr_table(table, "src", "dst", "score", inputs.n_items), positive_only=True
    )


def transition_source(inputs: SourceInputs, tables: dict, settings):
    """Per user: top `per_source` of Σ_i s_i · T(i, ·) over the last `settings.last` items,
    positive scores only."""
    from pipelines.candidates.broadcast_topk import source_topk

    return source_topk(inputs, transition_kernel(inputs, tables, settings))
