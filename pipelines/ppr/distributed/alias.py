"""The graph as alias rows: one equi-join per hop draws the next node in O(1).

Alias rows ``(node, col, accept, dst, dst_deg, alias_dst, alias_deg)``, one per edge, built
by sweeping Vose per node in numpy (``mapInArrow`` over edges hash-partitioned and sorted by
``(src, dst, prob)``; a node's edges straddling two Arrow batches are carried over).  A walker
at ``node`` (carrying its out-degree ``deg``) takes ``col = floor(u1 * deg)`` and equi-joins
``(node, col)``: exactly one row, ``dst`` if ``u2 < accept`` else ``alias_dst``; the next
degree rides along, so one join per hop.  The alias table is cached hash-partitioned by
``(node, col)``, so a hop shuffles only the walkers.
"""

from __future__ import annotations

ALIAS_SCHEMA = "node int, col int, deg int, accept double, dst int, alias_dst int"


def alias_rows(table):
    """Alias rows of complete nodes: ``table`` holds whole rows sorted by (src, dst, prob)."""
    import numpy as np
    import pyarrow as pa

    from udfs.alias_table import build_alias_tables

    src = table.column("src").to_numpy()
    dst = table.column("dst").to_numpy().astype(np.int32)
    prob = table.column("prob").to_numpy().astype(np.float64)
    starts = np.flatnonzero(np.concatenate(([True], src[1:] != src[:-1])))
    indptr = np.append(starts, src.shape[0]).astype(np.int64)
    deg = np.diff(indptr)
    tables = build_alias_tables(indptr, prob)
    row_start = np.repeat(indptr[:-1], deg)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(src, pa.int32()),
            pa.array(np.arange(src.shape[0]) - row_start, pa.int32()),
            pa.array(np.repeat(deg, deg), pa.int32()),
            pa.array(tables.accept, pa.float64()),
            pa.array(dst, pa.int32()),
            pa.array(dst[row_start + tables.alias], pa.int32()),
        ],
        names=["node", "col", "deg", "accept", "dst", "alias_dst"],
    )


def alias_partition(batches):
    """mapInArrow body: a node's edges may straddle batches, so the last node is carried."""
    import numpy as np
    import pyarrow as pa

    carry = None
    for rb in batches:
        t = pa.Table.from_batches([rb])
        if carry is not None:
            t = pa.concat_tables([carry, t])
        if t.num_rows == 0:
            continue
        src = t.column("src").to_numpy()
        cut = int(np.searchsorted(src, src[-1], side="left"))
        if cut:
            yield alias_rows(t.slice(0, cut).combine_chunks())
        carry = t.slice(cut)
    if carry is not None and carry.num_rows:
        yield alias_rows(carry.combine_chunks())


def prepare_graph(edges, n_parts: int):
    """-> (alias rows partitioned and sorted by (node, col), DataFrame[node, deg], raw rows)."""
    from pyspark.sql import functions as F

    e = edges.select(
        F.col("src").cast("int").alias("src"),
        F.col("dst").cast("int").alias("dst"),
        F.col("prob").cast("double").alias("prob"),
    )
    rows = (
        e.repartition(n_parts, "src")
        .sortWithinPartitions("src", "dst", "prob")
        .mapInArrow(alias_partition, ALIAS_SCHEMA)
        .localCheckpoint(eager=True)
    )
    deg = rows.filter(F.col("col") == 0).select("node", "deg")
    d1 = deg.select(F.col("node").alias("dst"), F.col("deg").alias("dst_deg"))
    d2 = deg.select(F.col("node").alias("alias_dst"), F.col("deg").alias("alias_deg"))
    alias = (
        rows.drop("deg")
        .join(d1, "dst", "left")
        .join(d2, "alias_dst", "left")
        .select(
            "node",
            "col",
            "accept",
            "dst",
            F.coalesce("dst_deg", F.lit(0)).alias("dst_deg"),
            "alias_dst",
            F.coalesce("alias_deg", F.lit(0)).alias("alias_deg"),
        )
        .repartition(n_parts, "node", "col")
        .sortWithinPartitions("node", "col")
        .localCheckpoint(eager=True)
    )
    return alias, deg, rows


def with_deg(df, deg):
    """df (node, ...) + deg (0 for nodes without out-edges)."""
    from pyspark.sql import functions as F

    return df.join(deg, "node", "left").withColumn("deg", F.coalesce("deg", F.lit(0)))


def union_all(parts):
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out
