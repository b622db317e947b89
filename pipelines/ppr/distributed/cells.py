"""Cells, the randomness of a distributed walk, and the per-run join context.

All randomness comes from *cells* ``(node, idx)`` with ``idx`` in ``[0, 2**b)``,
``2**b >= max(walks_per_node, max_steps)``: three uniforms ``xxhash64(seed, tag, node, idx)
>>> 11 / 2**53`` (coin, alias column, alias accept), so results never depend on partitioning.
Walk ``r`` (``0 <= r < walks_per_node``) of any source reads, at step ``t``, the cell
``(node_t, r XOR t)``.  Within one walk ``t -> r XOR t`` is injective, so a walk never reads a
cell twice: every step uses fresh, independent uniforms and each walk is an *exact* sample of
the walk model (no reuse within a walk, whatever the graph's cycles).  Walks of different
sources share cells (two of them at the same node at the same step with the same ``r`` move
together from then on); that couples estimates of different sources but not a source's own
walks.  Two walks of one source ``r != r'`` share a cell only when they stand on the same node
at steps ``t != t'`` with ``r XOR t == r' XOR t'``: a short-lived coupling (the next steps use
different cells unless the bit pattern repeats), which leaves the estimate unbiased and, in
the tests, its error still shrinking like ``1 / sqrt(walks)``.

Hubs: Every materialised walker set records (``observe`` with ``approx_top_k`` on the node each
walker joins on, in the same job as the checkpoint) the nodes with more than
``salt_threshold`` arrivals.  The next join splits: cold walkers join the partitioned alias
table (or segment table) directly; walkers at hot nodes get ``salt = xxhash64(walk id) mod
salts`` and join the hot nodes' rows replicated ``salts`` times on ``(key..., salt)``, so no
task holds a hub's whole walker set.  Salting changes no result.
"""

from __future__ import annotations

from pipelines.config import PprConfig

MOVE, COIN, DANGLING, TRUNC = 0, 1, 2, 3
#: Candidates for hot nodes per materialised walker set (approx_top_k's k).
HOT_TRACKED = 100
_TWO_M53 = 1.0 / float(2**53)


def index_bits(walks_per_node: int, max_steps: int) -> int:
    """b with ``2**b >= max(walks_per_node, max_steps, 2)``: the cell index space."""
    return (max(int(walks_per_node), int(max_steps), 2) - 1).bit_length()


class WalkContext:
    """Settings, counters and the Column expressions of one run.

    Every expression is built once and reused by every round: building a Column costs a few
    py4j calls each, which dominated the driver time of a round when rebuilt per step.  The
    step ``t`` lives in a column, never in a literal, so the rounds also share generated code.
    """

    def __init__(self, cfg: PprConfig, seed: int, thr: int, salts: int, parts: int):
        from pyspark.sql import functions as F

        self.alpha = float(cfg.alpha)
        self.seed = seed
        self.thr, self.salts, self.parts = thr, salts, parts
        self.joins = self.salted_joins = 0
        self.salted_nodes: set[int] = set()
        self.hot_seen: list[int] = []
        node, idx, deg = F.col("node"), F.col("idx"), F.col("deg")
        coin = self.uniform(0, node, idx) < self.alpha
        # The cell's verdict: the coin first, then a dangling node ends the walk, else move.
        self.status = (
            F.when(coin, F.lit(COIN)).when(deg == 0, F.lit(DANGLING)).otherwise(F.lit(MOVE))
        )
        self.moving = self.status == MOVE
        self.col = F.least(F.floor(self.uniform(1, node, idx) * deg), deg - 1).cast("int")
        self.col = self.col.alias("col")
        self.u2 = self.uniform(2, node, idx).alias("_u2")
        keep = F.col("_u2") < F.col("accept")
        self.next = [
            F.when(keep, F.col("dst")).otherwise(F.col("alias_dst")).alias("node"),
            F.when(keep, F.col("dst_deg")).otherwise(F.col("alias_deg")).alias("deg"),
        ]
        self._metrics: dict[tuple, list] = {}

    def uniform(self, tag: int, node, idx):
        """Uniform [0, 1) of the cell (node, idx): the top 53 bits of xxhash64."""
        from pyspark.sql import functions as F

        h = F.xxhash64(F.lit(self.seed).cast("long"), F.lit(tag), node, idx)
        return F.shiftrightunsigned(h, 11).cast("double") * _TWO_M53

    def _metric_cols(self, hot_col: str, moving: str | None) -> list:
        from pyspark.sql import functions as F

        key = (hot_col, moving)
        if key not in self._metrics:
            is_moving = F.col(moving) == MOVE if moving else F.lit(True)
            top = F.call_function(
                "approx_top_k", F.when(is_moving, F.col(hot_col)), F.lit(HOT_TRACKED), F.lit(10_000)
            )
            self._metrics[key] = [
                F.count(F.lit(1)).alias("rows"),
                F.sum(F.when(is_moving, 1).otherwise(0)).alias("moving"),
                top.alias("top"),
            ]
        return self._metrics[key]

    def materialize(self, df, hot_col: str, moving: str | None = None):
        """Checkpoint ``df`` in one job -> (df, rows, moving rows, hot nodes).

        ``hot_col`` is the node the next join keys on; a node with more than ``thr`` (moving)
        rows there is hot.  approx_top_k is a frequent-items sketch: its counts are
        estimates, which is all salting needs.  coalesce: a broadcast join keeps the stream
        side's partitions, which must not pile up from round to round.
        """
        from pyspark.sql import Observation

        obs = Observation()
        out = (
            df.coalesce(self.parts)
            .observe(obs, *self._metric_cols(hot_col, moving))
            .localCheckpoint(eager=True)
        )
        got = obs.get
        hot = sorted(
            int(it["item"])
            for it in (got.get("top") or [])
            if it["item"] is not None and it["count"] > self.thr
        )
        return out, int(got["rows"] or 0), int(got["moving"] or 0), hot

    def join(self, left, right, on: list[str], hot: list[int], salt_cols: list[str], small=False):
        """Inner equi-join on ``on`` (same names on both sides, ``on[0]`` the node key).

        Rows of ``left`` at hot nodes get ``salt = xxhash64(salt_cols) mod salts`` and meet
        the hot nodes' rows of ``right`` replicated ``salts`` times; the rest joins plainly,
        so ``right`` keeps its partitioning.  The result is the same join either way.
        """
        from pyspark.sql import functions as F

        self.joins += 1
        if small:
            left = F.broadcast(left)
        if not hot or self.salts <= 1:
            return left.join(right, on)
        self.salted_joins += 1
        self.salted_nodes.update(hot)
        is_hot = F.col(on[0]).isin(hot)
        cold = left.filter(~is_hot).join(right, on)
        salt = F.pmod(F.xxhash64(*salt_cols), F.lit(self.salts)).cast("int")
        hl = left.filter(is_hot).withColumn("_salt", salt)
        hr = right.filter(is_hot).withColumn(
            "_salt", F.explode(F.sequence(F.lit(0), F.lit(self.salts - 1)))
        )
        return cold.unionByName(hl.join(hr, [*on, "_salt"]).drop("_salt"))

    def hop(self, x, carry: list[str], alias, hot, out: list):
        """Rows of ``x`` (node, deg, idx, carry...) whose cell (node, idx) says move ->
        ``out`` (over the carry columns) + node, deg of the next hop.  One join; the walker
        side is the hash-join build side, the partitioned alias table streams unshuffled."""
        m = x.filter(self.moving).select(*carry, "node", self.col, self.u2).hint("shuffle_hash")
        j = self.join(m, alias, ["node", "col"], hot, carry[:2])
        return j.select(*out, *self.next)
