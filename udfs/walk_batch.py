"""Vectorised Monte-Carlo personalized PageRank (PPR) walks for a batch of sources.

Executor-side kernel: numpy only (no pyspark / ray imports).

Walk model
----------
Every walker starts at its source (that visit counts).  At each step a live walker terminates
with probability ``alpha`` (the restart probability), otherwise it moves to a neighbour drawn
from the row's transition probabilities with the alias tables of :mod:`udfs.alias_table`.  The
number of moves of a walker is therefore geometric, ``P(L = k) = (1 - alpha)**k * alpha``; the
kernel draws every walker's ``L`` up front (per source, a multinomial histogram of W such
lengths), which is the same process as flipping the coin at every step.  Two further stops:

* **Dangling node** (no out-edges): a walker there whose coin says "continue" cannot move and
  its walk ends (documented choice).  If its coin says "stop" there it is an ordinary
  coin-terminated walk ending at the dangling node.
* **Truncation** at ``max_steps`` moves.  The truncated probability mass is
  ``(1 - alpha)**max_steps``: ``0.7**200 ~ 1.0e-31`` for alpha = 0.3, and ``0.85**200 ~ 7.7e-15``
  for alpha = 0.15, far below the Monte-Carlo noise, so the bias is negligible.  (A truncated
  walk counts its visits, and for the end-point estimator it counts as ending where it was cut.)

Estimators (for source ``s``)
-----------------------------
* ``"visits"``: ``score(s, v) = visits(s, v) / total_visits(s)``, counting every visit including
  the start.  Without dangling stops ``E[total_visits] = walks / alpha``, so this equals
  ``alpha * visits / walks`` in expectation.  Normalising by the observed total instead makes a
  walk stopped at a dangling node equivalent to "restart at the source": each walk is one renewal
  cycle of the chain "follow an edge w.p. 1 - alpha, jump to s w.p. alpha, jump to s from a
  dangling node", and by the renewal-reward theorem its stationary distribution is
  ``E[visits(v) per cycle] / E[cycle length]``.  That chain is exactly the one solved by
  ``networkx.pagerank(G, alpha=1 - alpha, personalization={s: 1})``, whose default sends
  dangling mass back to the personalization vector.
* ``"endpoint"``: ``score(s, v) = (walks of s terminated by the coin at v) / (walks of s
  terminated by the coin)``; walks ended by a dangling node are discarded.  Each visit to ``v``
  ends the walk there by the coin with probability ``alpha`` independently of the past, so
  ``P(coin-end at v) = alpha * E[visits(v) per cycle]``; normalising over coin-ended walks gives
  the same stationary distribution as above (renewal argument), i.e. networkx's convention.

Determinism
-----------
The result depends only on (sorted distinct ``sources``, ``walks_per_source``, ``alpha``, graph,
``seed``, ``max_steps``): the generator is ``np.random.default_rng([seed, walks_per_source,
*blake2b(sorted sources)])``, never global state, and ``estimator`` does not change the walks.
Note that a source's estimate depends on which other sources share its batch (one stream per
batch), so the caller must batch deterministically (e.g. sort sources, fixed-size chunks).

Complexity
----------
With ``B = len(sources)``, ``W = walks_per_source`` and ``S ~ B * W / alpha`` total visits:
O(S) time, as at most ``max_steps`` iterations of one vectorised numpy step over all live
walkers of the batch (~12 array passes per step: one uniform, four gathers, cheap arithmetic).
Memory O(B * W) for the walker state (~70 bytes per walker) plus the visit counter, keyed by
``local_source * (n + 1) + node``:

* dense when ``B * (n + 1) <= DENSE_MAX_BINS`` and the bins do not outnumber the expected
  visits: ``np.bincount`` into O(B * n) int64 counters, O(B * n + S) time;
* sparse otherwise: keys are buffered (at most ``KEY_BUFFER``; uint32 when the key space fits),
  each full buffer is sorted in place and run-length encoded (O(k log k)) and merged into the
  running counts; memory O(KEY_BUFFER + distinct (source, node) pairs).  The end-point
  estimator only counts one key per walk.

Layout and tricks: walkers are laid out by pre-drawn length (descending), so the walkers still
moving at step t are always a prefix of the state arrays and no per-step compaction is needed.
Dangling nodes point to a virtual absorbing sink node ``n``; walkers parked there are dropped
(one compaction) once they make up a quarter of the live prefix.  One float64 uniform per move
drives both the alias column (``floor(u * deg)``) and the accept test (its fractional part,
compared with a precomputed ``column + accept`` threshold), and the two possible destinations
of an edge sit side by side in one array.  All scratch buffers are allocated once per call;
the per-graph arrays come from :func:`prepare_walk_graph` (pass ``prepared=`` to reuse them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from udfs.alias_table import AliasTables
from udfs.key_counter import KeyCounter
from udfs.walk_args import check_walk_args

__all__ = [
    "DENSE_MAX_BINS",
    "KEY_BUFFER",
    "WalkGraph",
    "WalkResult",
    "prepare_walk_graph",
    "ppr_walk_batch",
]

#: Use the dense bincount counter when ``len(sources) * (n + 1)`` is at most this many bins
#: (2**24 int64 counters = 128 MiB transient); otherwise sort/unique the visit keys.
DENSE_MAX_BINS = 1 << 24
#: Visit keys buffered before they are reduced (uint32 or int64: 16 or 32 MiB).
KEY_BUFFER = 1 << 22
#: Walk lengths below this come from one multinomial histogram per source (see _walker_layout).
_HIST_CAP = 1024


@dataclass(frozen=True)
class WalkResult:
    """COO PPR estimates of one batch, sorted by (src, dst).

    src int32, dst int32, score float64: every visited node with its estimated PPR (the source
    included); scores of one source sum to 1 (unless none of its walks ended by the coin, for
    the end-point estimator, in which case it has no rows).
    steps: total walker moves (edges traversed), for throughput figures.
    walks: total walks started (``len(sources) * walks_per_source``).
    """

    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray
    steps: int
    walks: int


@dataclass(frozen=True)
class WalkGraph:
    """Walk-ready arrays derived from (indptr, indices, tables); build once per graph with
    :func:`prepare_walk_graph` and pass as ``prepared=`` to amortise the O(n + nnz) set-up.

    Node arrays have n + 1 entries: node ``n`` is a virtual absorbing sink that dangling nodes
    point to.  Edge arrays have nnz + 1 entries: entry ``nnz`` is the sink's self-loop.
    """

    n: int
    start: np.ndarray  # int64[n+1]: first edge of the node (sink edge for dangling nodes)
    deg: np.ndarray  # float64[n+1]: out-degree (1 for dangling nodes and the sink)
    threshold: np.ndarray  # float64[nnz+1]: local column + accept
    dst2: np.ndarray  # int64[2*(nnz+1)]: (destination, alias destination) interleaved
    has_dangling: bool


def prepare_walk_graph(indptr, indices, tables: AliasTables) -> WalkGraph:
    """Precompute the per-node / per-edge arrays the walk kernel gathers from.  O(n + nnz)."""
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.asarray(indices)
    n = indptr.shape[0] - 1
    nnz = int(indptr[-1])
    if indices.shape[0] != nnz or tables.accept.shape[0] != nnz or tables.alias.shape[0] != nnz:
        raise ValueError("indices and alias tables must have nnz = indptr[-1] entries")
    deg_i = np.diff(indptr)
    dangling = deg_i == 0
    start = np.empty(n + 1, dtype=np.int64)
    start[:n] = indptr[:-1]
    start[n] = nnz
    start[:n][dangling] = nnz
    deg = np.ones(n + 1, dtype=np.float64)
    deg[:n][~dangling] = deg_i[~dangling]
    row_start = np.repeat(indptr[:-1], deg_i)
    col = np.arange(nnz, dtype=np.int64) - row_start
    threshold = np.empty(nnz + 1, dtype=np.float64)
    np.add(col, tables.accept, out=threshold[:nnz])
    threshold[nnz] = 1.0
    dst2 = np.empty(2 * (nnz + 1), dtype=np.int64)
    dst2[0 : 2 * nnz : 2] = indices
    dst2[1 : 2 * nnz : 2] = indices[row_start + tables.alias]
    dst2[2 * nnz :] = n
    return WalkGraph(n, start, deg, threshold, dst2, bool(dangling.any()))


# One-entry cache of the last prepared graph, keyed by the identity of its input arrays: the
# Spark stage calls the kernel batch after batch with the same graph objects, so the O(n + nnz)
# set-up runs once per task.  The arrays are treated as immutable (see ppr_walk_batch).
_PREPARED_CACHE: tuple | None = None


def _prepared_for(indptr, indices, tables: AliasTables) -> WalkGraph:
    global _PREPARED_CACHE
    hit = _PREPARED_CACHE
    if hit is not None and hit[0] is indptr and hit[1] is indices and hit[2] is tables:
        return hit[3]
    g = prepare_walk_graph(indptr, indices, tables)
    _PREPARED_CACHE = (indptr, indices, tables, g)
    return g


def _batch_rng(seed: int, walks_per_source: int, src_sorted: np.ndarray):
    digest = hashlib.blake2b(src_sorted.astype("<i8").tobytes(), digest_size=16).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng([int(seed), int(walks_per_source), *words])


def _empty_result(walks: int = 0) -> WalkResult:
    return WalkResult(
        np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float64), 0, walks
    )


def _walker_layout(rng, n_src: int, w_per: int, alpha: float, max_steps: int):
    """Pre-drawn walk lengths (number of moves, truncated at max_steps) for all walkers,
    laid out by length descending then local source ascending.

    The per-source length histogram is Multinomial(W, P(L = k)) with
    ``P(L = k) = alpha (1 - alpha)**k``, which is the distribution of W iid geometric lengths:
    O(n_src * max length) work instead of a geometric draw and a sort per walker.  Lengths
    ``>= _HIST_CAP`` share one tail cell whose walkers then draw ``cap + Geometric`` (the
    geometric law is memoryless), so the histogram stays small for any ``max_steps``.
    Returns (local source per walker int64, -length per walker int64, ascending).
    """
    cap = min(max_steps, _HIST_CAP)
    pvals = alpha * (1.0 - alpha) ** np.arange(cap + 1, dtype=np.float64)
    pvals[cap] = (1.0 - alpha) ** cap  # P(L >= cap); L = cap exactly when cap == max_steps
    hist = rng.multinomial(w_per, pvals, size=n_src)  # (n_src, cap + 1)
    tail_src = np.empty(0, np.int64)
    tail_len = np.empty(0, np.int64)
    if cap < max_steps and hist[:, cap].any():
        tail_src = np.repeat(np.arange(n_src, dtype=np.int64), hist[:, cap])
        tail_len = np.minimum(cap + rng.geometric(alpha, size=tail_src.shape[0]) - 1, max_steps)
        order = np.lexsort((tail_src, -tail_len))
        tail_src, tail_len = tail_src[order], tail_len[order]
        hist[:, cap] = 0
    present = np.flatnonzero(hist.any(axis=0))
    lmax = int(present[-1]) if present.size else 0
    by_len = hist[:, lmax::-1].T  # (lmax + 1, n_src), length descending
    body_src = np.repeat(np.tile(np.arange(n_src, dtype=np.int64), lmax + 1), by_len.ravel())
    body_len = np.repeat(np.arange(lmax, -1, -1, dtype=np.int64), by_len.sum(axis=1))
    return np.concatenate((tail_src, body_src)), -np.concatenate((tail_len, body_len))


def ppr_walk_batch(
    sources: np.ndarray,
    walks_per_source: int,
    alpha: float,
    indptr,
    indices,
    tables: AliasTables,
    seed: int,
    estimator: str = "visits",
    max_steps: int = 200,
    *,
    prepared: WalkGraph | None = None,
) -> WalkResult:
    """Monte-Carlo PPR of every source of the batch (see the module doc for the model).

    sources: distinct int node ids (any order; the result is sorted by (src, dst)).
    alpha: restart (termination) probability per step, in (0, 1); walks_per_source and
    max_steps >= 1 (udfs/walk_args.py: the config's ranges).
    prepared: optional :func:`prepare_walk_graph` of the same (indptr, indices, tables).  Without
    it the walk arrays are derived in O(n + nnz) and cached for the next
    call with the *same* array objects, so the graph arrays must not be mutated in place
    between calls (pass ``prepared=`` explicitly or new arrays if they are).
    Time O(B * W / alpha) vectorised, memory O(B * W) plus the counter (module doc).
    """
    n = prepared.n if prepared is not None else len(indptr) - 1
    src_sorted = check_walk_args(sources, walks_per_source, alpha, seed, estimator, max_steps, n=n)
    g = prepared if prepared is not None else _prepared_for(indptr, indices, tables)
    n_src = src_sorted.shape[0]
    w_per = int(walks_per_source)
    max_steps = int(max_steps)
    alpha = float(alpha)
    n_walks = n_src * w_per
    if n_walks == 0:
        return _empty_result()
    n1 = n + 1
    visits = estimator == "visits"
    rng = _batch_rng(seed, w_per, src_sorted)

    walker_src, neg_len = _walker_layout(rng, n_src, w_per, alpha, max_steps)
    base = walker_src * n1  # key offset of the walker's source
    pos = src_sorted[walker_src]  # current node (int64)

    nbins = n_src * n1
    expected = n_walks * min(1.0 / alpha, max_steps + 1.0) if visits else float(n_walks)
    dense = nbins <= DENSE_MAX_BINS and nbins <= expected
    counter = KeyCounter(nbins, int(min(KEY_BUFFER, max(n_walks, 1.1 * expected))), dense)
    local = np.arange(n_src, dtype=np.int64)

    m = int(np.searchsorted(neg_len, -1, side="right"))  # walkers with length >= 1
    if visits:  # every walk visits its source at the start: one key now, w_per - 1 at the end
        np.add(local * n1, src_sorted, out=counter.reserve(n_src), casting="unsafe")
    else:  # walks of length 0 end at their source
        np.add(base[m:], pos[m:], out=counter.reserve(n_walks - m), casting="unsafe")

    steps = _walk(g, rng, pos, base, neg_len, m, counter, visits)

    keys, counts = counter.result()
    if visits and w_per > 1:  # the w_per - 1 start visits not counted above
        counts[np.searchsorted(keys, local * n1 + src_sorted)] += w_per - 1
    src, node, score = _shares(keys, counts, n1, src_sorted)
    return WalkResult(src, node, score, int(steps), n_walks)


def _walk(g: WalkGraph, rng, pos, base, neg_len, m: int, counter: KeyCounter, visits: bool) -> int:
    """Advance the walkers step by step until none is left, counting their keys (every
    visit, or each walk's end point); returns the moves made. `pos`, `base` and `neg_len` are
    the walker layout (length descending, so the live walkers are the prefix of `m`); walkers
    parked at the sink are dropped once they are a quarter of the live prefix. One set of
    scratch buffers for every step."""
    n_walks = pos.shape[0]
    sink = g.n
    u = np.empty(n_walks, dtype=np.float64)
    x = np.empty(n_walks, dtype=np.float64)
    thr = np.empty(n_walks, dtype=np.float64)
    col = np.empty(n_walks, dtype=np.int64)
    edge = np.empty(n_walks, dtype=np.int64)
    sel = np.empty(n_walks, dtype=bool)
    steps = 0
    t = 0
    while m > 0:
        p = pos[:m]
        _advance(g, p, rng, u[:m], x[:m], thr[:m], col[:m], edge[:m], sel[:m])
        t += 1
        m_next = int(np.searchsorted(neg_len, -(t + 1), side="right"))
        if g.has_dangling:
            n_sink = int(np.count_nonzero(p == sink))
            steps += m - n_sink
        else:
            n_sink = 0
            steps += m
        if visits:
            np.add(base[:m], p, out=counter.reserve(m), casting="unsafe")
        elif m_next < m:  # walks whose length is t end here
            np.add(base[m_next:m], p[m_next:], out=counter.reserve(m - m_next), casting="unsafe")
        if n_sink and m_next > 0 and 4 * n_sink >= m_next:
            keep = np.flatnonzero(pos[:m_next] != sink)
            pos = pos[keep]
            base = base[keep]
            neg_len = neg_len[keep]
            m_next = int(np.searchsorted(neg_len, -(t + 1), side="right"))
        m = m_next
    return steps


def _advance(g: WalkGraph, p, rng, u, x, thr, col, edge, sel) -> None:
    """One step of every walker at nodes `p`, in place: column floor(u * deg), the alias
    coin on its fraction, then the next node (or the sink). The other arrays are scratch
    buffers of the same length. O(len(p)), no allocation."""
    rng.random(out=u)
    np.take(g.deg, p, out=x, mode="clip")
    np.multiply(x, u, out=x)  # x = u * deg in [0, deg)
    col[...] = x  # column = floor(x)
    np.take(g.start, p, out=edge, mode="clip")
    np.add(edge, col, out=edge)  # edge id
    np.take(g.threshold, edge, out=thr, mode="clip")
    np.greater_equal(x, thr, out=sel)  # frac(x) >= accept -> take the alias
    np.multiply(edge, 2, out=edge)
    np.add(edge, sel, out=edge)
    np.take(g.dst2, edge, out=p, mode="clip")


def _shares(keys, counts, n1: int, src_sorted):
    """(src, dst, score) from (local source * n1 + node) counts: each source's counts over
    its total, the sink (node n1 - 1) dropped. O(distinct keys)."""
    node = keys % n1
    real = node != n1 - 1
    keys, counts, node = keys[real], counts[real], node[real]
    lsrc = keys // n1
    totals = np.bincount(lsrc, weights=counts, minlength=src_sorted.shape[0])
    return src_sorted[lsrc].astype(np.int32), node.astype(np.int32), counts / totals[lsrc]
