"""Compiled (numba) Monte-Carlo PPR walks fused with the top-k per source.

Executor-side kernel: numpy + numba only (no pyspark / ray imports).  Same walk model and
estimators as :mod:`udfs.walk_batch` (the numpy reference implementation; see its module doc
for the dangling-node and truncation conventions and why both estimators reproduce
``networkx.pagerank(G, alpha=1 - alpha, personalization={s: 1})``).  What differs:

* **Per source, LANES walks in lock-step.**  A compiled loop walks the ``W`` walks of a
  source, ``LANES`` at a time (a lane whose walk ends takes the next one), so the cache misses
  of independent walks overlap instead of serialising on one walk's chain of dependent reads.
  Visits go to a dense ``int64[n]`` counter plus a list of touched nodes; then the top-k of
  the touched nodes by (share desc, dst asc) with the emitter every compiled top-k kernel
  shares (:func:`udfs.top_indices.emit_top`), and only the touched counters are cleared.
  No visit keys are materialised, so memory is O(n) for the counter plus O(B * k) for the
  output, and the COO intermediate of the numpy path (and its separate top-k pass)
  disappears.
* **Random numbers.**  One 64-bit SplitMix64 output per step: the low 32 bits are the restart
  coin (``low32 < floor(alpha * 2**32)``), the high 32 bits pick the alias column and the
  accept test (``x = high32 * deg``; column ``x >> 32``, fractional part ``(x & (2**32 - 1))
  / 2**32``).  So alpha and the accept probabilities are resolved to 2**-32, a bias far below
  the Monte-Carlo noise.  SplitMix64 passes BigCrush and costs a few integer operations.
* **Determinism per source.**  Walk ``w`` of source ``s`` has its own stream, seeded from
  ``(seed, s, walks_per_source, w)`` only, so a source's estimate depends neither on the
  batch it lands in, the batch size, Spark's partitioning nor ``LANES``.
  :func:`ppr_topk_reference` is a plain-Python loop, one walk after the other, with the same
  arithmetic; a test checks that both give identical rows.

Complexity: O(B * W / alpha) steps of O(1) each (two CSR reads, one alias read, one counter
increment), plus O(m + k log k) for the top-k of the m distinct visited nodes of each source
(a partition, then a sort of the k kept and the ties at the cut).
Memory: O(n) scratch + O(B * k) output.  Compiled once per process (``cache=True`` keeps the
machine code in ``__pycache__`` so later processes load it in milliseconds).
"""

from __future__ import annotations

import numpy as np

from udfs.alias_table import AliasTables
from udfs.njit_cached import njit_cached as _jit
from udfs.top_indices import emit_top
from udfs.walk_args import check_walk_args

__all__ = ["TopKResult", "ppr_topk", "ppr_topk_reference"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
#: Walks of a source advanced in lock-step (memory-level parallelism); any value gives the
#: same result, since every walk has its own random stream.
LANES = 8


class TopKResult:
    """Top-k rows of a batch, sorted by (src, rank): src int32, dst int32, score float64 (visit
    share over the whole walk, so a source's full distribution sums to 1), rank int32 from 1;
    steps (edges traversed) and walks (started) for throughput figures."""

    __slots__ = ("src", "dst", "score", "rank", "steps", "walks")

    def __init__(self, src, dst, score, rank, steps: int, walks: int) -> None:
        self.src, self.dst, self.score, self.rank = src, dst, score, rank
        self.steps, self.walks = steps, walks


@_jit(inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@_jit(inline="always")
def _source_state(seed, source, walks):
    # Three chained mixes so nearby (seed, source) pairs give unrelated streams.
    z = _mix(np.uint64(seed) * _GOLDEN + _GOLDEN)
    z = _mix(z ^ (np.uint64(source) * _M1 + _GOLDEN))
    return _mix(z ^ (np.uint64(walks) * _M2 + _GOLDEN))


@_jit(inline="always")
def _walker_state(base, w):
    return _mix(base ^ (np.uint64(w) * _M1 + _GOLDEN))


@_jit(nogil=True)
def _kernel(
    sources, walks, coin, indptr, indices, accept, alias, seed, endpoint, max_steps, k, self_out
):
    n = indptr.shape[0] - 1
    n_src = sources.shape[0]
    cap = n_src * min(k, n)
    out_src = np.empty(cap, np.int32)
    out_dst = np.empty(cap, np.int32)
    out_score = np.empty(cap, np.float64)
    out_rank = np.empty(cap, np.int32)
    counts = np.zeros(n, np.int64)
    touched = np.empty(n, np.int64)
    cand_j = np.empty(n, np.int64)
    cand_v = np.empty(n, np.float64)
    pos = np.empty(LANES, np.int64)  # -1: idle lane
    state = np.empty(LANES, np.uint64)
    moves = np.empty(LANES, np.int64)
    inv32 = 1.0 / 4294967296.0
    steps = 0
    o = 0
    for b in range(n_src):
        s = np.int64(sources[b])
        base = _source_state(seed, s, walks)
        nt = 0
        total = 0
        started = 0
        active = 0
        for lane in range(LANES):
            pos[lane] = -1
            if started < walks:
                state[lane] = _walker_state(base, started)
                started += 1
                pos[lane] = s
                moves[lane] = 0
                active += 1
                if not endpoint:
                    if counts[s] == 0:
                        touched[nt] = s
                        nt += 1
                    counts[s] += 1
                    total += 1
        while active > 0:
            # One step of every live lane: their memory reads are independent, so the CPU
            # overlaps the cache misses of LANES walks instead of waiting on one.
            for lane in range(LANES):
                v = pos[lane]
                if v < 0:
                    continue
                state[lane] += _GOLDEN
                z = _mix(state[lane])
                done = False
                if (z & _LOW32) < coin or moves[lane] >= max_steps:
                    done = True
                    if endpoint:
                        if counts[v] == 0:
                            touched[nt] = v
                            nt += 1
                        counts[v] += 1
                        total += 1
                else:
                    lo = indptr[v]
                    deg = indptr[v + 1] - lo
                    if deg == 0:  # dangling: the walk ends (discarded by the end-point estimator)
                        done = True
                    else:
                        x = (z >> np.uint64(32)) * np.uint64(deg)
                        e = lo + np.int64(x >> np.uint64(32))
                        if np.float64(x & _LOW32) * inv32 >= accept[e]:
                            e = lo + alias[e]
                        v = np.int64(indices[e])
                        pos[lane] = v
                        moves[lane] += 1
                        if not endpoint:
                            if counts[v] == 0:
                                touched[nt] = v
                                nt += 1
                            counts[v] += 1
                            total += 1
                if done:
                    steps += moves[lane]
                    if started < walks:  # the lane takes the source's next walk
                        state[lane] = _walker_state(base, started)
                        started += 1
                        pos[lane] = s
                        moves[lane] = 0
                        if not endpoint:
                            if counts[s] == 0:
                                touched[nt] = s
                                nt += 1
                            counts[s] += 1
                            total += 1
                    else:
                        pos[lane] = -1
                        active -= 1
        m = 0
        for i in range(nt):
            v = touched[i]
            if self_out or v != s:
                cand_j[m] = v
                # One total per source: the shares order the nodes as their counts do.
                cand_v[m] = counts[v] / total
                m += 1
        o = emit_top(s, cand_j, cand_v, m, k, out_src, out_dst, out_score, out_rank, o)
        for i in range(nt):
            counts[touched[i]] = 0
    return out_src[:o], out_dst[:o], out_score[:o], out_rank[:o], steps


def ppr_topk(
    sources,
    walks_per_source: int,
    alpha: float,
    indptr: np.ndarray,
    indices: np.ndarray,
    tables: AliasTables,
    seed: int,
    k: int,
    estimator: str = "visits",
    max_steps: int = 200,
    exclude_self: bool = True,
) -> TopKResult:
    """Monte-Carlo PPR of every source, top ``k`` destinations each (``k >= n`` for all).
    Argument ranges are the config's (udfs/walk_args.py): alpha in (0, 1), the counts >= 1.

    Arrays are used as given when their dtypes already match (int64 indptr, int32 indices,
    float64 accept, int32 alias), so a broadcast graph is not copied per call.
    """
    n = int(np.asarray(indptr).shape[0]) - 1
    src = check_walk_args(sources, walks_per_source, alpha, seed, estimator, max_steps, k=k, n=n)
    coin = np.uint64(min(int(float(alpha) * 4294967296.0), 4294967296))
    s, d, sc, r, steps = _kernel(
        src,
        int(walks_per_source),
        coin,
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(indices, dtype=np.int32),
        np.ascontiguousarray(tables.accept, dtype=np.float64),
        np.ascontiguousarray(tables.alias, dtype=np.int32),
        np.uint64(int(seed)),
        estimator == "endpoint",
        int(max_steps),
        int(k),
        not exclude_self,
    )
    return TopKResult(s, d, sc, r, int(steps), int(src.shape[0]) * int(walks_per_source))


# --------------------------------------------------------------------------- reference

_U64 = (1 << 64) - 1


def _mix_py(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def ppr_topk_reference(
    sources,
    walks_per_source: int,
    alpha: float,
    indptr,
    indices,
    tables: AliasTables,
    seed: int,
    k: int,
    estimator: str = "visits",
    max_steps: int = 200,
    exclude_self: bool = True,
) -> TopKResult:
    """Plain-Python loop, dict counters and ``sorted()``, with the same random stream as
    :func:`ppr_topk`: identical rows.  O(B * W / alpha) interpreted steps: tests only."""
    n = len(indptr) - 1
    src = check_walk_args(sources, walks_per_source, alpha, seed, estimator, max_steps, k=k, n=n)
    g, m1, m2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
    coin = min(int(float(alpha) * 2**32), 2**32)
    ptr = [int(v) for v in indptr]
    idx = [int(v) for v in indices]
    acc = [float(v) for v in tables.accept]
    ali = [int(v) for v in tables.alias]
    rows: list[tuple[int, int, float, int]] = []
    steps = 0
    for s in (int(v) for v in src):
        base = _mix_py((int(seed) * g + g) & _U64)
        base = _mix_py(base ^ ((s * m1 + g) & _U64))
        base = _mix_py(base ^ ((int(walks_per_source) * m2 + g) & _U64))
        counts: dict[int, int] = {}
        for w in range(int(walks_per_source)):
            state = _mix_py(base ^ ((w * m1 + g) & _U64))
            v, moves = s, 0
            if estimator == "visits":
                counts[v] = counts.get(v, 0) + 1
            while True:
                state = (state + g) & _U64
                z = _mix_py(state)
                if (z & 0xFFFFFFFF) < coin or moves >= max_steps:
                    if estimator == "endpoint":
                        counts[v] = counts.get(v, 0) + 1
                    break
                lo, deg = ptr[v], ptr[v + 1] - ptr[v]
                if deg == 0:
                    break
                x = (z >> 32) * deg
                e = lo + (x >> 32)
                if (x & 0xFFFFFFFF) / 2**32 >= acc[e]:
                    e = lo + ali[e]
                v = idx[e]
                moves += 1
                if estimator == "visits":
                    counts[v] = counts.get(v, 0) + 1
            steps += moves
        total = sum(counts.values())
        ranked = sorted(
            ((c, d) for d, c in counts.items() if not (exclude_self and d == s)),
            key=lambda t: (-t[0], t[1]),
        )[: int(k)]
        rows.extend((s, d, c / total, r) for r, (c, d) in enumerate(ranked, start=1))
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return TopKResult(
        np.array(cols[0], np.int32),
        np.array(cols[1], np.int32),
        np.array(cols[2], np.float64),
        np.array(cols[3], np.int32),
        steps,
        len(src) * int(walks_per_source),
    )
