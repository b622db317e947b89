"""Multi-hop transition scores from source items: Σ_h decay**(h-1) · (e_s P^h), top k per source.

P is the row-stochastic transition matrix in CSR form (indptr, indices, prob). Each hop
expands every frontier entry (i, m) of a source into (j, m · P_ij) for the out-edges of i
and sums duplicates; before the next hop the source keeps only its `beam` heaviest positive
frontier entries (ties: smaller item first).

Compiled (numba), one source at a time into dense accumulators over the n items with lists
of the touched ones: a hop costs O(E) for its E = beam · d̄ expanded entries (d̄ the mean
out-degree of frontier items, bounded by the graph's max_out_degree), the beam O(E) (a
partition at the beam-th mass) plus O(beam log beam), the top k O(T) + O(k log k) for the
T items reached. O(n) scratch memory, whatever the number of sources; the cost per source does
not grow with the catalog. Each cell adds its terms in frontier-item order, each row in CSR
order. `multi_hop_reference` is the plain-Python definition the kernel must equal.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from udfs.njit_cached import njit_cached
from udfs.top_indices import emit_top, top_indices


@njit_cached(nogil=True)
def _multi_hop(indptr, indices, prob, sources, decays, beam, k):
    n = indptr.shape[0] - 1
    hops = decays.shape[0]
    out_s = np.empty(sources.shape[0] * k, np.int32)
    out_d = np.empty(sources.shape[0] * k, np.int32)
    out_v = np.empty(sources.shape[0] * k, np.float64)
    out_r = np.empty(sources.shape[0] * k, np.int32)
    nxt = np.zeros(n, np.float64)
    in_nxt = np.zeros(n, np.bool_)
    total = np.zeros(n, np.float64)
    in_total = np.zeros(n, np.bool_)
    nxt_items = np.empty(n, np.int64)
    total_items = np.empty(n, np.int64)
    buf_j = np.empty(n, np.int64)
    buf_v = np.empty(n, np.float64)
    n_out = 0
    for si in range(sources.shape[0]):
        src = sources[si]
        f_items = np.empty(1, np.int64)
        f_mass = np.ones(1, np.float64)
        f_items[0] = src
        n_total = 0
        for h in range(hops):
            n_nxt = 0
            for f in range(f_items.shape[0]):
                i, m = f_items[f], f_mass[f]
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    if not in_nxt[j]:
                        in_nxt[j] = True
                        nxt[j] = 0.0
                        nxt_items[n_nxt] = j
                        n_nxt += 1
                    nxt[j] += m * prob[e]
            n_pos = 0
            for c in range(n_nxt):
                j = nxt_items[c]
                in_nxt[j] = False
                mass = nxt[j]
                if mass != 0.0:
                    if not in_total[j]:
                        in_total[j] = True
                        total[j] = 0.0
                        total_items[n_total] = j
                        n_total += 1
                    total[j] += decays[h] * mass
                if mass > 0.0:
                    buf_j[n_pos] = j
                    buf_v[n_pos] = mass
                    n_pos += 1
            if h + 1 < hops:
                sel = top_indices(buf_j, buf_v, n_pos, beam)
                sel = sel[np.argsort(buf_j[sel])]  # the frontier in item order
                f_items = buf_j[sel].copy()
                f_mass = buf_v[sel].copy()
        m = 0
        for c in range(n_total):
            j = total_items[c]
            in_total[j] = False
            if j != src and total[j] != 0.0:
                buf_j[m] = j
                buf_v[m] = total[j]
                m += 1
        n_out = emit_top(src, buf_j, buf_v, m, k, out_s, out_d, out_v, out_r, n_out)
    return out_s[:n_out], out_d[:n_out], out_v[:n_out], out_r[:n_out]


def multi_hop_topk(
    indptr, indices, prob, sources, *, hops: int, hop_decay: float, beam: int, k: int
):  # fmt: skip
    """(src int32, dst int32, score float64, rank int32) arrays, top k per source, dst != src,
    sorted by (src, rank) for sources given in ascending order (module doc for the cost)."""
    if min(hops, beam, k) < 0:
        raise ValueError("hops, beam and k must be >= 0")
    # Python's float powers, as the reference computes them.
    decays = np.array([hop_decay ** (h - 1) for h in range(1, hops + 1)], dtype=np.float64)
    return _multi_hop(
        np.asarray(indptr, dtype=np.int64),
        np.asarray(indices, dtype=np.int64),
        np.asarray(prob, dtype=np.float64),
        np.asarray(sources, dtype=np.int64),
        decays,
        int(beam),
        int(k),
    )


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
