"""Item-transition graph from per-user event sequences: a pure Spark DataFrame transform.

Rules (``GraphConfig``):

1. Order. Each user's train events are ordered by ``ts``, ties broken by ``item_id`` and then
   ``value`` (nulls first), so the order never depends on partitioning.
2. Sessions. With ``session_gap > 0`` an event whose gap to the previous event of the same user
   is larger than ``session_gap`` seconds starts a new session (a gap equal to it does not);
   transitions never cross a session boundary. ``session_gap = 0`` means one session per user.
3. Transitions. The event at position p and each of the next ``window`` events of its session,
   at distance d = 1..window, make one transition i -> j of weight ``decay ** (d - 1)`` and
   count 1. A transition with i == j (a repeated item) is a self-loop: it is not an edge, it is
   counted on the node (``graph_nodes.self_loops``); the repeated events still count towards
   the node's ``popularity``.
4. Reverse. With ``reverse_weight > 0`` each transition i -> j (i != j) also adds j -> i of
   weight ``decay ** (d - 1) * reverse_weight`` and count 1 (co-occurrence in both directions).
5. Aggregation. Per (src, dst): weight = sum of the weights, count = sum of the counts.
   The weight is evaluated in one fixed order from exact integer counts per distance,
   ``F + reverse_weight * R`` with ``F = sum_d n_fwd(d) * decay ** (d - 1)`` (d ascending, from
   0.0) and ``R`` likewise for reverse transitions, so it is bit-identical whatever the
   partitioning (ties in step 6 are then deterministic too).
6. Pruning. Edges with ``count < min_count`` are dropped; then each src keeps its
   ``max_out_degree`` heaviest edges (weight descending, ties: smaller dst first);
   ``max_out_degree = 0`` keeps all.
7. Probabilities. ``out_weight(src)`` = sum of the kept weights of src, summed heaviest first in
   the order of step 6; ``prob = weight / out_weight(src)``.
8. Nodes. Every item of ``items`` is a node (id = item_idx), with or without edges:
   out_degree, in_degree, out_weight (0.0 without out-edges) after pruning, popularity (train
   events of the item) and self_loops (forward self-loop transitions, step 3).

Scale: no collect and no Python UDF. One per-user window (``lag``/``lead`` and a running sum
for sessions) gives the next ``window`` items of every event, an ``inline`` of a fixed-size
array of structs turns them into transitions, one ``groupBy(src, dst)`` aggregates them
(map-side combined), and one per-src window ranks and normalises the out-edges. A single
user's history or a single src's out-edges sit on one task; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import GraphConfig, check_section


@dataclass
class TransitionGraph:
    """The graph's DataFrames (lazy). `pairs` and `ranked` are the ones worth persisting.

    - pairs: every aggregated (src, dst) before pruning, self pairs included:
      src, dst, f_1..f_W, r_1..r_W (transitions per distance, forward/reverse), n_fwd,
      count, weight.
    - ranked: kept edges with `_out_weight` (out_weight of src).
    - edges: graph_edges (src, dst, weight, count, prob).
    - nodes: graph_nodes (id, item_id, out_degree, in_degree, out_weight, popularity,
      self_loops).
    """

    pairs: Any
    ranked: Any
    edges: Any
    nodes: Any
    config: GraphConfig

    def stats(self) -> dict[str, int]:
        """Counts for the manifest: one Spark job over `pairs`, one over `ranked`."""
        from pyspark.sql import functions as F

        is_self = F.col("src") == F.col("dst")
        row = self.pairs.agg(
            F.sum("n_fwd").alias("transitions"),
            F.sum(F.when(is_self, F.col("n_fwd"))).alias("self_loops"),
            F.count(F.when(~is_self, 1)).alias("edges_before_pruning"),
            F.count(F.when(~is_self & (F.col("count") < self.config.min_count), 1)).alias(
                "pruned_min_count"
            ),
        ).first()
        stats = {k: int(row[k] or 0) for k in row.asDict()}
        kept = self.ranked.agg(
            F.count(F.lit(1)).alias("edges"), F.countDistinct("src").alias("nodes_with_out_edges")
        ).first()
        stats.update({k: int(kept[k]) for k in kept.asDict()})
        stats["pruned_max_out_degree"] = (
            stats["edges_before_pruning"] - stats["pruned_min_count"] - stats["edges"]
        )
        return stats


def _decayed_sum(cols: list[str], decay: float):
    """sum_d col_d * decay ** (d - 1), d ascending, starting from 0.0 (the canonical order)."""
    from pyspark.sql import functions as F

    acc = F.lit(0.0)
    for d, c in enumerate(cols, start=1):
        acc = acc + F.col(c).cast("double") * F.lit(decay ** (d - 1))
    return acc


def _node_part(df, id_col: str, **values):
    """id + the per-node stat columns (_out, _in, _pop, _self: long, 0 unless given; _ow)."""
    from pyspark.sql import functions as F

    cols = [F.col(id_col).cast("int").alias("id")]
    for name in ("_out", "_in", "_pop", "_self"):
        cols.append(values.get(name, F.lit(0)).cast("long").alias(name))
    cols.append(values.get("_ow", F.lit(None)).cast("double").alias("_ow"))
    return df.select(*cols)


def _ordered_next_items(train_df, cfg: GraphConfig):
    """Rules 1-2: every event with the next `window` items of its session (_i, _n1.._nW)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user_idx").orderBy(
        F.col("ts").asc(), F.col("item_id").asc(), F.col("value").asc_nulls_first()
    )
    events = train_df.select("user_idx", "item_idx", "item_id", "ts", "value")
    if cfg.session_gap > 0:
        micros = F.unix_micros("ts")
        gap = micros - F.lag(micros).over(by_user)
        events = events.withColumn(
            "_new", F.when(gap > F.lit(float(cfg.session_gap) * 1e6), 1).otherwise(0)
        ).withColumn("_sess", F.sum("_new").over(by_user.rowsBetween(Window.unboundedPreceding, 0)))

        def nxt(d: int):
            same = F.lead("_sess", d).over(by_user) == F.col("_sess")
            return F.when(same, F.lead("item_idx", d).over(by_user))
    else:

        def nxt(d: int):
            return F.lead("item_idx", d).over(by_user)

    return events.select(
        F.col("item_idx").alias("_i"), *[nxt(d).alias(f"_n{d}") for d in range(1, cfg.window + 1)]
    )


def _transitions(seq, cfg: GraphConfig):
    """Rules 3-4: one row (src, dst, d, rev) per forward (and reverse) transition."""
    from pyspark.sql import functions as F

    rw = float(cfg.reverse_weight)
    structs = []
    for d in range(1, cfg.window + 1):
        i, j = F.col("_i"), F.col(f"_n{d}")
        structs.append(
            F.struct(i.alias("src"), j.alias("dst"), F.lit(d).alias("d"), F.lit(False).alias("rev"))
        )
        if rw > 0:
            structs.append(
                F.struct(
                    j.alias("src"), i.alias("dst"), F.lit(d).alias("d"), F.lit(True).alias("rev")
                )
            )
    trans = seq.select(F.inline(F.array(*structs))).where(
        F.col("src").isNotNull() & F.col("dst").isNotNull()
    )
    if rw > 0:  # the reverse of a self-loop is the same self-loop: counted once, forward
        trans = trans.where(~F.col("rev") | (F.col("src") != F.col("dst")))
    return trans


def _aggregate_pairs(trans, cfg: GraphConfig):
    """Rule 5: per (src, dst) exact counts per distance, then the weight in one fixed order."""
    from pyspark.sql import functions as F

    win, rw = cfg.window, float(cfg.reverse_weight)

    def per_distance(rev: bool, d: int, name: str):
        hit = (F.col("rev") == F.lit(rev)) & (F.col("d") == F.lit(d))
        return F.sum(F.when(hit, 1).otherwise(0)).cast("long").alias(name)

    fcols = [f"f_{d}" for d in range(1, win + 1)]
    rcols = [f"r_{d}" for d in range(1, win + 1)] if rw > 0 else []
    aggs = [per_distance(False, d, c) for d, c in enumerate(fcols, start=1)]
    aggs += [per_distance(True, d, c) for d, c in enumerate(rcols, start=1)]
    pairs = trans.groupBy("src", "dst").agg(*aggs)
    n_fwd = sum((F.col(c) for c in fcols[1:]), F.col(fcols[0]))
    n_all = sum((F.col(c) for c in rcols), n_fwd)
    weight = _decayed_sum(fcols, cfg.decay)
    if rw > 0:
        weight = weight + F.lit(rw) * _decayed_sum(rcols, cfg.decay)
    return pairs.select(
        "src",
        "dst",
        *fcols,
        *rcols,
        n_fwd.cast("long").alias("n_fwd"),
        n_all.cast("long").alias("count"),
        weight.alias("weight"),
    )


def _prune_and_rank(pairs, cfg: GraphConfig):
    """Rules 6-7: kept edges with their src's out_weight (`_out_weight`), heaviest first."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    kept = pairs.where((F.col("src") != F.col("dst")) & (F.col("count") >= cfg.min_count))
    by_src = Window.partitionBy("src").orderBy(F.col("weight").desc(), F.col("dst").asc())
    if cfg.max_out_degree > 0:
        kept = kept.withColumn("_rank", F.row_number().over(by_src)).where(
            F.col("_rank") <= cfg.max_out_degree
        )
    whole = by_src.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    return kept.select(
        F.col("src").cast("int").alias("src"),
        F.col("dst").cast("int").alias("dst"),
        "weight",
        "count",
        F.sum("weight").over(whole).alias("_out_weight"),
    )


def _nodes(items_df, train_df, pairs, ranked):
    """Rule 8: every catalog item with its degree, weight, popularity and self-loop stats
    (one aggregation over the union of their four sources, then one join)."""
    from pyspark.sql import functions as F

    one = F.lit(1)
    per_node = (
        _node_part(ranked, "src", _out=one, _ow=F.col("_out_weight"))
        .unionByName(_node_part(ranked, "dst", _in=one))
        .unionByName(_node_part(train_df, "item_idx", _pop=one))
        .unionByName(
            _node_part(pairs.where(F.col("src") == F.col("dst")), "src", _self=F.col("n_fwd"))
        )
        .groupBy("id")
        .agg(
            F.sum("_out").alias("_out"),
            F.sum("_in").alias("_in"),
            F.max("_ow").alias("_ow"),
            F.sum("_pop").alias("_pop"),
            F.sum("_self").alias("_self"),
        )
    )
    return (
        items_df.select(F.col("item_idx").cast("int").alias("id"), "item_id")
        .join(per_node, "id", "left")
        .select(
            "id",
            "item_id",
            F.coalesce("_out", F.lit(0)).cast("int").alias("out_degree"),
            F.coalesce("_in", F.lit(0)).cast("int").alias("in_degree"),
            F.coalesce("_ow", F.lit(0.0)).cast("double").alias("out_weight"),
            F.coalesce("_pop", F.lit(0)).cast("long").alias("popularity"),
            F.coalesce("_self", F.lit(0)).cast("long").alias("self_loops"),
        )
    )


def build_graph(train_df, items_df, cfg: GraphConfig) -> TransitionGraph:
    """train (user_idx, item_idx, item_id, ts, value) + items (item_idx, item_id) -> graph,
    by the numbered rules of the module doc, one helper each."""
    from pyspark.sql import functions as F

    check_section(cfg, "graph")
    seq = _ordered_next_items(train_df, cfg)
    pairs = _aggregate_pairs(_transitions(seq, cfg), cfg)
    ranked = _prune_and_rank(pairs, cfg)
    edges = ranked.select(
        "src", "dst", "weight", "count", (F.col("weight") / F.col("_out_weight")).alias("prob")
    )
    nodes = _nodes(items_df, train_df, pairs, ranked)
    return TransitionGraph(pairs=pairs, ranked=ranked, edges=edges, nodes=nodes, config=cfg)
