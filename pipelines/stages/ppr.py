"""ppr: graph_nodes, graph_edges (+ train for `sources=needed`) -> item_ppr (top-k per source).

`ppr.strategy=auto` broadcasts the graph while it has at most `ppr.broadcast_max_edges`
edges and switches to the distributed (join-based) strategy above; the choice and its
reason are written into the manifest.
"""

from __future__ import annotations

import time

import numpy as np

from pipelines.stage import Stage, StageContext


def choose_strategy(requested: str, n_edges: int, broadcast_max_edges: int) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"ppr.strategy={requested}"
    if n_edges <= broadcast_max_edges:
        return "broadcast", f"{n_edges:,} edges <= ppr.broadcast_max_edges {broadcast_max_edges:,}"
    return "distributed", f"{n_edges:,} edges > ppr.broadcast_max_edges {broadcast_max_edges:,}"


def select_seeds(ctx: StageContext):
    """Spark DataFrame[src]: the walks' start nodes (`ppr.seeds`): nodes with out-edges, or
    only those in users' recent histories."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cfg = ctx.config.ppr
    nodes = (
        ctx.read_spark("graph_nodes")
        .filter(F.col("out_degree") > 0)
        .select(F.col("id").alias("src"))
    )
    if cfg.seeds == "all":
        return nodes
    w = Window.partitionBy("user_idx").orderBy(F.col("ts").desc(), F.col("item_id").desc())
    recent = (
        ctx.read_spark("train")
        .withColumn("_r", F.row_number().over(w))
        .filter(F.col("_r") <= cfg.needed_history)
        .select(F.col("item_idx").alias("src"))
        .distinct()
    )
    return nodes.join(recent, "src")


def _broadcast_seeds(ctx: StageContext) -> tuple[np.ndarray, int]:
    """(sorted seed ids, n_nodes); `seeds=all` reads graph_nodes with Arrow, no Spark job."""
    nodes = ctx.read_arrow("graph_nodes", columns=["id", "out_degree"])
    ids = nodes.column("id").to_numpy()
    n_nodes = int(ids.max()) + 1 if ids.size else 0
    if ctx.config.ppr.seeds == "all":
        src = ids[nodes.column("out_degree").to_numpy() > 0]
    else:
        src = np.asarray([r[0] for r in select_seeds(ctx).collect()], dtype=np.int32)
    return np.sort(src.astype(np.int32)), n_nodes


def run(ctx: StageContext) -> None:
    cfg = ctx.config.ppr
    seed = cfg.seed or ctx.config.run.seed
    n_edges = ctx.manifest("graph_edges")["rows"]
    strategy, reason = choose_strategy(cfg.strategy, n_edges, cfg.broadcast_max_edges)
    ctx.log(f"strategy {strategy} ({reason})")
    t0 = time.perf_counter()
    stats: dict = {}

    def figures() -> dict:
        """Called by the write once the table's files exist: the counts are final."""
        seconds = time.perf_counter() - t0
        steps, walks = int(stats["steps"]), int(stats["walks"])
        stats.update(
            strategy=strategy,
            strategy_reason=reason,
            seed=seed,
            kernel=cfg.kernel if strategy == "broadcast" else None,
            walk_seconds=round(seconds, 3),  # walks + top-k + Parquet write
            steps_per_second=round(steps / seconds, 1) if seconds > 0 else None,
        )
        ctx.log(
            f"{walks:,} walks, {steps:,} steps in {seconds:.1f}s incl. write "
            f"({steps / max(seconds, 1e-9) / 1e6:.1f}M steps/s)"
        )
        return stats

    if strategy == "broadcast":
        from pipelines.ppr.broadcast import write_ppr_broadcast
        from pipelines.tableio import FilesWriter

        src, n_nodes = _broadcast_seeds(ctx)
        ctx.log(f"{len(src):,} seeds ({cfg.seeds}) in {time.perf_counter() - t0:.1f}s")
        edges = ctx.read_arrow("graph_edges", columns=["src", "dst", "prob"])

        def write(out_dir) -> None:
            # Tasks write their sorted rows as Parquet themselves (no shuffle, no JVM rows).
            stats.update(write_ppr_broadcast(ctx.spark, edges, n_nodes, src, cfg, seed, out_dir))

        ctx.write("item_ppr", FilesWriter(write), extra=figures)
    else:
        from pipelines.ppr.distributed import ppr_distributed

        sources = select_seeds(ctx)
        edges = ctx.read_spark("graph_edges")
        out, dstats = ppr_distributed(
            ctx.spark, edges, sources, cfg, seed, method=cfg.distributed_method
        )
        stats.update(dstats)
        # Already one partition per hash of src, each sorted by (src, rank): written as is.
        ctx.write("item_ppr", out, extra=figures)
    whole = time.perf_counter() - ctx.started
    ctx.log(f"whole stage {whole:.1f}s: {stats['steps'] / max(whole, 1e-9) / 1e6:.1f}M steps/s")


STAGE = Stage(
    name="ppr",
    fn=run,
    inputs=("graph_nodes", "graph_edges", "train"),
    outputs=("item_ppr",),
    config_keys=("ppr", "run.seed"),
    description="Monte-Carlo personalized PageRank, top-k per source item",
)
