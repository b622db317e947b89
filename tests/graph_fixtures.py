"""Small random weighted graphs in CSR form for the udfs tests (and a power-law generator for
throughput measurements).

CSR convention (as in ``udfs``): ``indptr`` int64 [n+1], ``indices`` int32 [nnz] sorted within
each row, ``prob`` float64 [nnz] (row-normalised ``weights``), ``weights`` float64 [nnz].
No self-loops and no duplicate edges, so the graph round-trips through ``networkx.DiGraph``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "csr_from_edges",
    "power_law_graph",
    "random_weighted_graph",
    "row_normalise",
    "to_networkx",
]


def row_normalise(indptr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Transition probabilities: each non-empty row of ``weights`` divided by its sum."""
    deg = np.diff(indptr)
    row_sum = np.zeros(deg.shape[0], dtype=np.float64)
    nonempty = np.flatnonzero(deg)
    if weights.size:
        row_sum[nonempty] = np.add.reduceat(weights, indptr[nonempty])
    return weights / np.repeat(np.where(row_sum > 0, row_sum, 1.0), deg)


def csr_from_edges(n: int, src: np.ndarray, dst: np.ndarray, weights: np.ndarray):
    """CSR (indptr, indices, prob, weights) from an edge list; drops self-loops and duplicate
    (src, dst) pairs (first occurrence wins), sorts by (src, dst)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    ok = src != dst
    key = src[ok] * n + dst[ok]
    key, first = np.unique(key, return_index=True)
    w = weights[ok][first]
    s, d = key // n, key % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s, minlength=n), out=indptr[1:])
    indices = d.astype(np.int32)
    return indptr, indices, row_normalise(indptr, w), w


def _component_edges(rng, nodes: np.ndarray, *, hubs: bool, dangling: bool):
    """Edges inside one component: a directed cycle over its non-dangling nodes, random extra
    out-edges with preferential (Pareto) targets, and optionally two out-hubs."""
    k = nodes.shape[0]
    is_dangling = np.zeros(k, dtype=bool)
    if dangling and k >= 5:
        is_dangling[rng.choice(k, size=max(1, k // 10), replace=False)] = True
    live = nodes[~is_dangling]
    srcs, dsts = [], []
    if live.shape[0] >= 2:  # cycle
        perm = rng.permutation(live)
        srcs.append(perm)
        dsts.append(np.roll(perm, -1))
    popularity = rng.pareto(1.2, size=k) + 0.05
    popularity /= popularity.sum()
    out_deg = rng.poisson(2.5, size=live.shape[0])
    if hubs and live.shape[0] >= 4:
        out_deg[rng.choice(live.shape[0], size=2, replace=False)] = int(0.6 * k)
    srcs.append(np.repeat(live, out_deg))
    dsts.append(nodes[rng.choice(k, size=int(out_deg.sum()), p=popularity)])
    return np.concatenate(srcs), np.concatenate(dsts)


def random_weighted_graph(
    n: int, seed: int, *, hubs: bool = True, dangling: bool = True, disconnected: bool = True
):
    """Random directed weighted graph on ``n`` nodes -> (indptr, indices, prob, weights).

    Contains directed cycles, preferential-attachment in-hubs, (with ``hubs``) two out-hubs of
    degree ~0.6 * component size per component, (with ``dangling``) ~10% nodes without
    out-edges plus isolated nodes, (with ``disconnected``) a second component of ~20% of the
    nodes and a tiny chain component.  Weights mix lognormal values with small integers (ties).
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if disconnected and n >= 20:
        n_main = int(0.7 * n)
        n_second = int(0.2 * n)
        comps = [perm[:n_main], perm[n_main : n_main + n_second]]
        rest = perm[n_main + n_second :]
    else:
        comps, rest = [perm], perm[:0]
    srcs, dsts = [], []
    for nodes in comps:
        s, d = _component_edges(rng, nodes, hubs=hubs, dangling=dangling)
        srcs.append(s)
        dsts.append(d)
    if rest.shape[0] >= 3:  # tiny chain a -> b -> c (c dangling if ``dangling``, else a cycle)
        chain = rest[:3]
        srcs.append(chain[:2])
        dsts.append(chain[1:])
        if not dangling:
            srcs.append(chain[2:3])
            dsts.append(chain[:1])
        rest = rest[3:]
    if not dangling and rest.shape[0] >= 2:  # no isolated nodes: pair them up in 2-cycles
        r = rest if rest.shape[0] % 2 == 0 else np.append(rest, rest[0])
        srcs += [r[0::2], r[1::2]]
        dsts += [r[1::2], r[0::2]]
    elif not dangling and rest.shape[0] == 1:
        srcs.append(rest)
        dsts.append(comps[0][:1])
    src = np.concatenate(srcs)
    dst = np.concatenate(dsts)
    w = np.where(
        rng.random(src.shape[0]) < 0.3,
        rng.integers(1, 4, size=src.shape[0]).astype(np.float64),
        rng.lognormal(0.0, 1.0, size=src.shape[0]),
    )
    return csr_from_edges(n, src, dst, w)


def to_networkx(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray):
    """networkx.DiGraph with nodes 0..n-1 and a ``weight`` attribute per edge."""
    import networkx as nx

    n = indptr.shape[0] - 1
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    src = np.repeat(np.arange(n), np.diff(indptr))
    g.add_weighted_edges_from(
        zip(src.tolist(), np.asarray(indices).tolist(), np.asarray(weights).tolist(), strict=True)
    )
    return g


def power_law_graph(
    n: int, nnz: int, seed: int, *, exponent: float = 1.2, dangling_frac: float = 0.02
):
    """Synthetic power-law graph (Pareto out-degrees and target popularity, a fraction
    ``dangling_frac`` of nodes without out-edges), ~``nnz`` edges after removing self-loops
    and duplicates -> (indptr, indices, prob, weights).  Vectorised; ~0.3 s for 1M edges."""
    rng = np.random.default_rng(seed)
    act = rng.pareto(exponent, size=n) + 1.0
    act[rng.random(n) < dangling_frac] = 0.0
    pop = rng.pareto(exponent, size=n) + 1.0
    target = int(nnz * 1.3)  # oversample: duplicate edges to popular targets get merged
    out_deg = np.minimum(rng.multinomial(target, act / act.sum()), n - 1)
    src = np.repeat(np.arange(n, dtype=np.int64), out_deg)
    dst = rng.choice(n, size=src.shape[0], p=pop / pop.sum())
    w = rng.lognormal(0.0, 1.0, size=src.shape[0])
    return csr_from_edges(n, src, dst, w)
