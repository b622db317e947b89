"""transition: short walks on the item-transition graph from the user's last items.

The training-free graph heuristic of "An Embarrassingly Simple Graph Heuristic Reveals
Shortcut-Solvable Benchmarks for Sequential Recommendation" (2026): the next item is likely
a few transitions away from the last one or two. With seed weights s (the last
`transition_last` train events, weight transition_last_decay**p, summing to 1) and P the
row-stochastic graph_edges.prob matrix:

    score(u, j) = Σ_i s_i · T(i, j),  T(i, ·) = Σ_{h=1..H} transition_hop_decay**(h-1) · e_i P^h

i.e. the probability of the paths of length h from the seeds to j. T is computed once per
seed item (not per user) by `udfs.multihop` on executors, with the graph broadcast as CSR;
each item keeps its `transition_beam` heaviest frontier entries between hops and its top
`per_source` rows of T.
"""

from __future__ import annotations

import numpy as np

from pipelines.sources.base import SourceInputs

SCHEMA = "src int, dst int, score double, rank int"


def multi_hop_table(
    spark, edges, seeds: np.ndarray, n_items: int, *, hops, hop_decay, beam, k, batch=256
):
    """DataFrame[src, dst, score, rank]: top-k T(i, ·) of every seed item i."""
    import pyarrow as pa

    from pipelines.ppr.csr import csr_from_edges

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


def transition_source(ctx, inputs: SourceInputs):
    from pyspark.sql import functions as F

    from pipelines.ppr.user_ppr import recent_item_weights
    from pipelines.sources.base import top_per_user
    from pipelines.sources.recent import weighted_item_sum

    cfg = ctx.config.candidates
    weights = recent_item_weights(
        inputs.train, cfg.transition_last, cfg.transition_last_decay
    ).persist()
    seeds = np.asarray(
        [r[0] for r in weights.select("item_idx").distinct().collect()], dtype=np.int32
    )
    table = multi_hop_table(
        ctx.spark,
        ctx.read_arrow("graph_edges", columns=["src", "dst", "prob"]),
        seeds,
        inputs.n_items,
        hops=cfg.transition_hops,
        hop_decay=cfg.transition_hop_decay,
        beam=cfg.transition_beam,
        k=cfg.per_source,
    )
    scored = weighted_item_sum(weights, table, "src", "dst", "score").filter(F.col("score") > 0)
    return top_per_user(scored, cfg.per_source, inputs.seen)
