"""graph: train, items -> graph_nodes, graph_edges (item-transition graph).

The rules are in `pipelines.graph.transitions`. Layout on disk, for the PPR stage:
- graph_edges is range-partitioned by src and sorted by (src, dst) within each file, one file
  per ~EDGES_PER_FILE edges: reading the files in manifest order (part-00000, part-00001, ...)
  yields the edges in CSR order, and all out-edges of a src sit in one file.
- graph_nodes is sorted by id the same way.
The manifest `extra` of both tables carries the counts (transitions, self-loops, edges before
and after pruning, pruned per rule, nodes with out-edges).
"""

from __future__ import annotations

import math

from pipelines.stage import Stage, StageContext

EDGES_PER_FILE = 2_000_000
NODES_PER_FILE = 5_000_000


def csr_layout(df, key: str, second: str | None, rows: int, rows_per_file: int):
    """Range-partition by `key` into ceil(rows / rows_per_file) files, sorted inside each."""
    n = max(1, math.ceil(rows / rows_per_file))
    return df.repartitionByRange(n, key).sortWithinPartitions(key, *([second] if second else []))


def run(ctx: StageContext) -> None:
    from pipelines.graph import build_graph

    cfg = ctx.config.graph
    train = ctx.read_spark("train")
    items = ctx.read_spark("items")
    n_items = ctx.manifest("items")["rows"]
    ctx.log(
        f"window={cfg.window} decay={cfg.decay} session_gap={cfg.session_gap}s "
        f"reverse_weight={cfg.reverse_weight} min_count={cfg.min_count} "
        f"max_out_degree={cfg.max_out_degree}; {ctx.manifest('train')['rows']:,} train events, "
        f"{n_items:,} items"
    )
    g = build_graph(train, items, cfg)
    g.pairs.persist()
    g.ranked.persist()
    try:
        stats = g.stats()
        ctx.log(
            f"{stats['transitions']:,} transitions ({stats['self_loops']:,} self-loops) -> "
            f"{stats['edges_before_pruning']:,} edges; pruned {stats['pruned_min_count']:,} "
            f"by min_count, {stats['pruned_max_out_degree']:,} by max_out_degree; "
            f"kept {stats['edges']:,}"
        )
        edges = csr_layout(g.edges, "src", "dst", stats["edges"], EDGES_PER_FILE)
        ctx.write("graph_edges", edges, extra=stats)
        nodes = csr_layout(g.nodes, "id", None, n_items, NODES_PER_FILE)
        ctx.write("graph_nodes", nodes, extra={**stats, "nodes": n_items})
    finally:
        g.ranked.unpersist()
        g.pairs.unpersist()


STAGE = Stage(
    name="graph",
    fn=run,
    inputs=("train", "items"),
    outputs=("graph_nodes", "graph_edges"),
    config_keys=("graph",),
    description="item-transition graph of each user's next `window` train items, pruned",
)
