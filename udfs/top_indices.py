"""The `limit` largest of a buffer of scored items, ties to the smaller item: the selection
every compiled top-k kernel ends with (udfs/multihop.py, udfs/weighted_topk.py,
udfs/cooccurrence.py).

O(m) to partition at the limit-th value, then O(t log t) to order the t ≤ m values at or
above it (t = limit plus the ties at the cut).
"""

from __future__ import annotations

import numpy as np

from udfs.njit_cached import njit_cached

__all__ = ["top_indices"]


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
