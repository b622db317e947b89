"""Multi-hop transition scores from source items: Σ_h decay**(h-1) · (e_s P^h), top k per source.

P is the row-stochastic transition matrix in CSR form (indptr, indices, prob). Each hop
expands every frontier entry (s, i, m) into (s, j, m · P_ij) for the out-edges of i and sums
duplicates (a sort on the (s, j) key); before the next hop each source keeps only its `beam`
heaviest frontier entries (ties: smaller item first).

Cost per chunk of B sources over n items: O(H · (B · beam · d̄ + B · n)) time (one
bincount and one partition per hop, no sort) and O(B · n) memory, d̄ the mean out-degree of
frontier items (bounded by the graph's max_out_degree); the chunk size caps B · n. `multi_hop_reference` is the plain-Python definition the kernel must equal.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from udfs.topk import top_k_per_source


def _expand(rows, cols, mass, indptr, indices, prob, n, b):
    """Dense (b, n) mass after one hop from the frontier entries (row, col, mass)."""
    deg = indptr[cols + 1] - indptr[cols]
    total = int(deg.sum())
    if total == 0:
        return np.zeros((b, n))
    # Edge position of every expanded entry: its item's first edge plus its offset in the run.
    within = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg)
    e = np.repeat(indptr[cols], deg) + within
    key = np.repeat(rows, deg) * n + indices[e]
    return np.bincount(key, weights=np.repeat(mass, deg) * prob[e], minlength=b * n).reshape(b, n)


def _beam(dense, beam):
    """Mask of each row's `beam` largest positive entries (ties: smaller item first)."""
    b, n = dense.shape
    if beam >= n:
        return dense > 0
    thr = -np.partition(-dense, beam - 1, axis=1)[:, beam - 1]
    keep = dense > thr[:, None]
    tie = dense == thr[:, None]
    need = beam - keep.sum(axis=1)
    keep |= tie & (np.cumsum(tie, axis=1) <= need[:, None])
    return keep & (dense > 0)


def _batch(src, indptr, indices, prob, hops, hop_decay, beam, k):
    n, b = len(indptr) - 1, len(src)
    rows, cols, mass = np.arange(b), src, np.ones(b)
    total = np.zeros((b, n))
    for h in range(1, hops + 1):
        dense = _expand(rows, cols, mass, indptr, indices, prob, n, b)
        total += hop_decay ** (h - 1) * dense
        if h < hops:
            rows, cols = np.nonzero(_beam(dense, beam))
            mass = dense[rows, cols]
    r, c = np.nonzero(total)
    return top_k_per_source(src[r], c, total[r, c], k)


def multi_hop_topk(
    indptr,
    indices,
    prob,
    sources,
    *,
    hops: int,
    hop_decay: float,
    beam: int,
    k: int,
    max_cells: int = 1 << 23,
):
    """(src int32, dst int32, score float64, rank int32) arrays, top k per source, dst != src.

    Sources are processed in chunks of max_cells // n_items: each chunk accumulates in a
    dense (chunk, n_items) array (one bincount per hop, no sort), so memory stays at
    about 3 · max_cells float64 values whatever the catalog size.
    """
    n = len(indptr) - 1
    src = np.asarray(sources, dtype=np.int64)
    chunk = max(1, max_cells // max(n, 1))
    parts = [
        _batch(src[o : o + chunk], indptr, indices, prob, hops, hop_decay, beam, k)
        for o in range(0, len(src), chunk)
    ]
    if not parts:
        return top_k_per_source(src, src, np.zeros(0), k)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def multi_hop_reference(
    indptr, indices, prob, source: int, *, hops: int, hop_decay: float, beam: int, k: int
):
    """The definition, for one source: [(dst, score)] best first (ties: smaller dst)."""
    frontier, total = {source: 1.0}, defaultdict(float)
    for h in range(1, hops + 1):
        nxt = defaultdict(float)
        for i, mass in frontier.items():
            for e in range(indptr[i], indptr[i + 1]):
                nxt[int(indices[e])] += mass * prob[e]
        for j, mass in nxt.items():
            total[j] += hop_decay ** (h - 1) * mass
        frontier = dict(sorted(nxt.items(), key=lambda p: (-p[1], p[0]))[:beam])
    ranked = sorted(((j, v) for j, v in total.items() if j != source), key=lambda p: (-p[1], p[0]))
    return ranked[:k]
