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
def _before(items, values, a, b):
    """Whether entry a ranks above entry b: larger value, or the same value and smaller item."""
    return values[a] > values[b] or (values[a] == values[b] and items[a] < items[b])


@njit_cached(nogil=True)
def _best_first(items, values, idx):
    """idx ordered by (value desc, item asc): a bottom-up merge sort over insertion-sorted
    runs, O(t log t) for t entries. The items of a buffer are distinct, so the order is
    total: any correct sort gives the same rows, whatever order the buffer is in."""
    t = idx.shape[0]
    src = idx.copy()
    dst = np.empty_like(idx)
    width = 16  # runs this short are sorted by insertion first: fewer passes, fewer copies
    for lo in range(0, t, width):
        for i in range(lo + 1, min(lo + width, t)):
            x = src[i]
            j = i - 1
            while j >= lo and _before(items, values, x, src[j]):
                src[j + 1] = src[j]
                j -= 1
            src[j + 1] = x
    while width < t:
        for lo in range(0, t, 2 * width):
            mid = min(lo + width, t)
            hi = min(lo + 2 * width, t)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                if _before(items, values, src[j], src[i]):
                    dst[o] = src[j]
                    j += 1
                else:
                    dst[o] = src[i]
                    i += 1
                o += 1
            dst[o : o + mid - i] = src[i:mid]
            o += mid - i
            dst[o : o + hi - j] = src[j:hi]
        src, dst = dst, src
        width *= 2
    return src


@njit_cached(inline="always")
def top_indices(items, values, m, limit):
    """Indices into items[:m] (distinct items) of the `limit` largest values (ties: smaller
    item first), best first."""
    js, vs = items[:m], values[:m]
    if m > limit:
        cut = np.partition(vs, m - limit)[m - limit]  # the limit-th largest value
        keep = np.flatnonzero(vs >= cut)
    else:
        keep = np.arange(m)
    return _best_first(js, vs, keep)[:limit]


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
