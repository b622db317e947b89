"""Multi-hop transition scores from source items: Σ_h decay**(h-1) · (e_s P^h), top k per source.

P is the row-stochastic transition matrix in CSR form (indptr, indices, prob). Each hop
expands every frontier entry (s, i, m) into (s, j, m · P_ij) for the out-edges of i and sums
duplicates; before the next hop each source keeps only its `beam` heaviest frontier entries
(ties: smaller item first).

Cost per chunk of B sources over n items, E = B · beam · d̄ expanded entries per hop (d̄ the
mean out-degree of frontier items, bounded by the graph's max_out_degree): a hop is summed
densely (one bincount over the B · n cells, O(B · n)) when E ≥ B · n / SPARSE_FACTOR, else
sparsely (sort of the touched cells, O(E log E)). Dense-only hops would make the cost per
source grow with the catalog; the switch keeps it near O(E log E) (benchmarks/multihop_bench.py,
figures in benchmarks/RESULTS.md).
Memory: O(B · n) floats, B = max_cells // min(n, beam · max degree).
`multi_hop_reference` is the plain-Python definition the kernel must equal.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from udfs.topk import rank_runs, top_k_per_source

#: A hop is expanded sparsely (sort the touched cells) when it touches fewer than
#: 1 / SPARSE_FACTOR of the chunk's b * n cells, densely (a bincount over them) otherwise.
SPARSE_FACTOR = 4


def _hop(rows, cols, mass, indptr, indices, prob, n, b):
    """One hop from the frontier entries (row, col, mass) -> (sorted distinct cells
    ``row * n + j``, their summed mass; cells whose mass sums to zero dropped).

    Dense: one bincount over all b * n cells, O(b * n).  Sparse: ``np.unique`` of the E
    touched cells, O(E log E).  Both add the contributions in input order (bincount), so the
    masses are bit-identical whichever is used."""
    deg = indptr[cols + 1] - indptr[cols]
    total = int(deg.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0)
    # Edge position of every expanded entry: its item's first edge plus its offset in the run.
    within = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg)
    e = np.repeat(indptr[cols], deg) + within
    key = np.repeat(rows, deg) * n + indices[e]
    w = np.repeat(mass, deg) * prob[e]
    if total * SPARSE_FACTOR >= b * n:
        dense = np.bincount(key, weights=w, minlength=b * n)
        cells = np.flatnonzero(dense)
        return cells, dense[cells]
    cells, inv = np.unique(key, return_inverse=True)
    summed = np.bincount(inv, weights=w, minlength=cells.shape[0])
    nz = summed != 0
    return cells[nz], summed[nz]


def _beam(cells, mass, n, beam):
    """Next frontier: each row's ``beam`` largest positive entries (ties: smaller item
    first), as (rows, cols, mass) in (row, col) order.  O(E log E)."""
    pos = mass > 0
    cells, mass = cells[pos], mass[pos]
    rows = cells // n
    if rows.shape[0] == 0:  # every walk of the chunk ended in sinks
        return rows, rows, mass
    order = np.lexsort((cells, -mass, rows))
    sel = np.sort(order[rank_runs(rows[order]) <= beam])
    return rows[sel], cells[sel] % n, mass[sel]


def _batch(src, indptr, indices, prob, hops, hop_decay, beam, k):
    n, b = len(indptr) - 1, len(src)
    rows, cols, mass = np.arange(b), src, np.ones(b)
    hop_cells, hop_mass = [], []
    for h in range(1, hops + 1):
        cells, m = _hop(rows, cols, mass, indptr, indices, prob, n, b)
        hop_cells.append(cells)
        hop_mass.append(hop_decay ** (h - 1) * m)
        if h < hops:
            rows, cols, mass = _beam(cells, m, n, beam)
    # Summed over hops in hop order (bincount), as a dense running total would.
    cells, inv = np.unique(np.concatenate(hop_cells), return_inverse=True)
    total = np.bincount(inv, weights=np.concatenate(hop_mass), minlength=cells.shape[0])
    nz = total != 0
    cells, total = cells[nz], total[nz]
    return top_k_per_source(src[cells // n], cells % n, total, k)


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

    Sources are processed in chunks of B = max_cells // min(n_items, beam · max degree)
    (module doc): a hop touches at most B · beam · max degree cells and is only summed
    densely when it touches at least B · n / SPARSE_FACTOR, so memory stays at a few
    SPARSE_FACTOR · max_cells values whatever the catalog size.
    """
    n = len(indptr) - 1
    src = np.asarray(sources, dtype=np.int64)
    max_deg = int(np.diff(indptr).max()) if n else 0
    chunk = max(1, max_cells // max(min(n, beam * max(max_deg, 1)), 1))
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
