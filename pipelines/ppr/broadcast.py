"""Broadcast PPR: the graph as CSR + alias arrays broadcast once; seeds (start nodes) in batches.

Each row of the work DataFrame is one batch of `ppr.batch_seeds` consecutive sorted
seeds; rows are sliced into partitions in order, so the output of every partition is
already sorted by (src, rank) and the stage writes it without a shuffle. Executors run the
kernel in `mapInArrow`; executor memory per task is bounded by one batch.

`write_ppr_broadcast` has each task write its rows as one Parquet file with pyarrow and
return only its counts. The rows then never cross into the JVM (Arrow -> rows -> Parquet
there, a large share of the stage's JVM CPU: benchmarks/RESULTS.md). A task writes to a
hidden temp name and renames it to `part-<partition>.parquet`, so a retried or speculative attempt replaces
the file whole with the same bytes (the walks are seeded per batch). The run directory has
to be a file system every executor sees, as for every WalkRank table.

Kernels (`ppr.kernel`): `numpy` (default; `udfs.walk_batch.ppr_walk_batch`, vectorised over
every walker of a batch, then `udfs.topk`; one random stream per batch, seeded from (seed,
batch id)) or `numba` (`udfs.walk_numba.ppr_topk`: compiled walks fused with the top-k; one
stream per walk from (seed, source, walk), so the table does not depend on the batching).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.config import PprConfig
from schemas.tables import ITEM_PPR
from udfs.csr import csr_from_edges

COUNTS_SCHEMA = "partition int, rows long, steps long, walks long"


def _kernel(bc, cfg: PprConfig, seed: int):
    """-> walk(batches): yields (rows of one source batch as a RecordBatch, steps, walks)."""

    def walk(batches):
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
                rows = pa.RecordBatch.from_arrays(
                    [
                        pa.array(s, pa.int32()),
                        pa.array(d, pa.int32()),
                        pa.array(sc, pa.float64()),
                        pa.array(r, pa.int32()),
                    ],
                    schema=ITEM_PPR.schema,
                )
                yield rows, steps, walks

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

    return walk


def _file_writer(walk, out_dir: str):
    """mapInArrow function: the task's rows into `out_dir/part-<partition>.parquet` (a local
    folder or a URI: tasks reach the store with the executor's own credentials); yields one
    row (partition, rows, steps, walks)."""

    def run(batches):
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        from pipelines.storage import Location

        out = Location(out_dir)
        part = TaskContext.get().partitionId()
        final = out / f"part-{part:05d}.parquet"
        # Locally a temporary sibling renamed into place; an object store shows an object
        # whole once closed, so a task retried on another executor writes the same name.
        tmp = out / f".part-{part:05d}-{uuid.uuid4().hex[:8]}.tmp" if out.is_local else final
        n_rows = n_steps = n_walks = 0
        try:
            with (
                tmp.fs.open_output_stream(tmp.path) as sink,
                pq.ParquetWriter(sink, ITEM_PPR.schema) as writer,
            ):
                for rows, steps, walks in walk(batches):
                    writer.write_batch(rows)
                    n_rows, n_steps, n_walks = (
                        n_rows + rows.num_rows,
                        n_steps + steps,
                        n_walks + walks,
                    )
            if n_rows and out.is_local:
                os.replace(tmp.path, final.path)
        finally:
            if out.is_local or not n_rows:
                tmp.delete()
        yield pa.RecordBatch.from_pylist(
            [{"partition": part, "rows": n_rows, "steps": n_steps, "walks": n_walks}],
            schema=pa.schema(
                [("partition", pa.int32()), ("rows", pa.int64()), ("steps", pa.int64()),
                 ("walks", pa.int64())]
            ),
        )  # fmt: skip

    return run


def _prepare(spark, edges: pa.Table, n_nodes: int, sources: np.ndarray, cfg: PprConfig):
    """CSR + alias tables broadcast once, and the work DataFrame of source batches."""
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
    b = max(1, cfg.batch_seeds)
    batches = [(i, sources[o : o + b].tolist()) for i, o in enumerate(range(0, len(sources), b))]
    # A few tasks per core evens out the load; more only adds per-task start-up.
    n_parts = max(1, min(len(batches), sc.defaultParallelism * 4))
    work = spark.createDataFrame(sc.parallelize(batches, n_parts), "batch long, sources array<int>")
    stats = {
        "strategy": "broadcast",
        "sources": int(len(sources)),
        "batches": len(batches),
        "partitions": n_parts,
        "graph_bytes": int(
            indptr.nbytes + indices.nbytes + tables.accept.nbytes + tables.alias.nbytes
        ),
        "prepare_seconds": round(time.perf_counter() - t0, 3),
    }
    return work, bc, stats


def write_ppr_broadcast(
    spark,
    edges: pa.Table,
    n_nodes: int,
    sources: np.ndarray,
    cfg: PprConfig,
    seed: int,
    out_dir: str | Path,
) -> dict:
    """Run the walks; every task writes its rows as `out_dir/part-<partition>.parquet`
    (files in name order are sorted by (src, rank)). Returns the stats with steps and walks;
    the caller commits out_dir (`tableio.FilesWriter`), which counts the rows."""
    work, bc, stats = _prepare(spark, edges, n_nodes, sources, cfg)
    try:
        counts = work.mapInArrow(
            _file_writer(_kernel(bc, cfg, seed), str(out_dir)), COUNTS_SCHEMA
        ).collect()
    finally:
        bc.unpersist()
    return {
        **stats,
        "steps": sum(r["steps"] for r in counts),
        "walks": sum(r["walks"] for r in counts),
    }
