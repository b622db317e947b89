"""The `limit` largest of a buffer of scored items, ties to the smaller item, and the rows
every compiled top-k kernel ends with (udfs/multihop.py, udfs/weighted_topk.py,
udfs/cooccurrence.py, udfs/walk_numba.py): one definition, so the kernels cannot drift apart
in how they break ties.

O(m) to partition at the limit-th value, then O(t log t) to order the t ≤ m values at or
above it (t = limit plus the ties at the cut).
"""

from __future__ import annotations

import numpy as np

from udfs.njit_cached import njit_cached

__all__ = ["emit_top", "top_indices"]


@njit_cached(inline="always")
def top_indices(items, values, m, limit):
    """Indices into items[:m] of the `limit` largest values (ties: smaller item first),
    best first."""
    js, vs = items[:m], values[:m]
    if m > limit:
        cut = -np.partition(-vs, limit - 1)[limit - 1]
        keep = np.flatnonzero(vs >= cut)
    else:
        keep = np.arange(m)
    keep = keep[np.argsort(js[keep])]
    order = np.argsort(-vs[keep], kind="mergesort")  # stable: ties stay in item order
    return keep[order[:limit]]


@njit_cached(inline="always")
def emit_top(key, items, values, m, k, out_key, out_item, out_value, out_rank, n_out):
    """Append the top k of items[:m] by value (ties: smaller item first) as rows
    (key, item, value, rank from 1) at position n_out of the out arrays; returns the new end.

    The out arrays must have room for min(k, m) more rows; m == 0 or k == 0 adds none.
    """
    if m == 0 or k == 0:
        return n_out
    top = top_indices(items, values, m, k)
    for r in range(top.shape[0]):
        out_key[n_out] = key
        out_item[n_out] = items[top[r]]
        out_value[n_out] = values[top[r]]
        out_rank[n_out] = r + 1
        n_out += 1
    return n_out
