"""Broadcast PPR: the graph as CSR + alias arrays broadcast once; sources in batches.

Each row of the work DataFrame is one batch of `ppr.batch_sources` consecutive sorted
sources; rows are sliced into partitions in order, so the output of every partition is
already sorted by (src, rank) and the stage writes it without a shuffle. Executors run the
kernel in `mapInArrow`; executor memory per task is bounded by one batch.

Kernels (`ppr.kernel`): `numpy` (default; `udfs.walk_batch.ppr_walk_batch`, vectorised over
every walker of a batch, then `udfs.topk`; one random stream per batch, seeded from (seed,
batch id)) or `numba` (`udfs.walk_numba.ppr_topk`: compiled walks fused with the top-k; one
stream per walk from (seed, source, walk), so the table does not depend on the batching).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from pipelines.config import PprConfig
from pipelines.ppr.csr import csr_from_edges

OUTPUT_SCHEMA = "src int, dst int, score double, rank int"


def _kernel(bc, cfg: PprConfig, seed: int, steps_acc, walks_acc):
    def run(batches):
        from udfs.alias_table import AliasTables

        indptr, indices, accept, alias = bc.value
        tables = AliasTables(accept=accept, alias=alias)
        for rb in batches:
            ids = rb.column("batch").to_numpy()
            col = rb.column("sources")
            offsets = col.offsets.to_numpy()
            flat = col.values.to_numpy()
            for i, batch_id in enumerate(ids):
                srcs = flat[offsets[i] : offsets[i + 1]]
                s, d, sc, r, steps, walks = _walk(srcs, int(batch_id), indptr, indices, tables)
                steps_acc.add(steps)
                walks_acc.add(walks)
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array(s, pa.int32()),
                        pa.array(d, pa.int32()),
                        pa.array(sc, pa.float64()),
                        pa.array(r, pa.int32()),
                    ],
                    names=["src", "dst", "score", "rank"],
                )

    def _walk(srcs, batch_id, indptr, indices, tables):
        if cfg.kernel == "numba":
            from udfs.walk_numba import ppr_topk

            res = ppr_topk(
                srcs,
                cfg.walks_per_node,
                cfg.alpha,
                indptr,
                indices,
                tables,
                seed=int(seed),
                k=cfg.top_k,
                estimator=cfg.estimator,
                max_steps=cfg.max_steps,
            )
            return res.src, res.dst, res.score, res.rank, res.steps, res.walks
        from udfs.topk import top_k_per_source
        from udfs.walk_batch import ppr_walk_batch

        res = ppr_walk_batch(
            np.asarray(srcs, dtype=np.int32),
            cfg.walks_per_node,
            cfg.alpha,
            indptr,
            indices,
            tables,
            seed=int(seed) * 1_000_003 + batch_id,
            estimator=cfg.estimator,
            max_steps=cfg.max_steps,
        )
        s, d, sc, r = top_k_per_source(res.src, res.dst, res.score, cfg.top_k)
        return s, d, sc, r, int(res.steps), int(res.walks)

    return run


def ppr_broadcast(
    spark, edges: pa.Table, n_nodes: int, sources: np.ndarray, cfg: PprConfig, seed: int
):
    """-> (DataFrame[src, dst, score, rank] lazily computed, stats dict filled after an action).

    edges: the graph_edges table as Arrow (src, dst, prob). Driver memory: O(nnz).
    """
    from udfs.alias_table import build_alias_tables

    t0 = time.perf_counter()
    indptr, indices, prob = csr_from_edges(
        edges.column("src").to_numpy(),
        edges.column("dst").to_numpy(),
        edges.column("prob").to_numpy(),
        n_nodes,
    )
    tables = build_alias_tables(indptr, prob)
    sc = spark.sparkContext
    bc = sc.broadcast((indptr, indices, tables.accept, tables.alias))
    sources = np.sort(np.asarray(sources, dtype=np.int32))
    b = max(1, cfg.batch_sources)
    batches = [(i, sources[o : o + b].tolist()) for i, o in enumerate(range(0, len(sources), b))]
    # A few tasks per core evens out the load; more only adds per-task start-up.
    n_parts = max(1, min(len(batches), sc.defaultParallelism * 4))
    work = spark.createDataFrame(sc.parallelize(batches, n_parts), "batch long, sources array<int>")
    steps_acc, walks_acc = sc.accumulator(0), sc.accumulator(0)
    out = work.mapInArrow(_kernel(bc, cfg, seed, steps_acc, walks_acc), OUTPUT_SCHEMA)
    stats = {
        "strategy": "broadcast",
        "sources": int(len(sources)),
        "batches": len(batches),
        "partitions": n_parts,
        "graph_bytes": int(
            indptr.nbytes + indices.nbytes + tables.accept.nbytes + tables.alias.nbytes
        ),
        "prepare_seconds": round(time.perf_counter() - t0, 3),
        "_steps": steps_acc,
        "_walks": walks_acc,
        "_broadcast": bc,
    }
    return out, stats
