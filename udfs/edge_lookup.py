"""The weight of (src, dst) pairs in a graph's edge list, by binary search on packed keys.

The edges become one sorted array of keys src << 32 | dst with their values (16 bytes per
edge); a pair's value is found with np.searchsorted. O(E log E) once to sort E edges, then
O(P log E) for P pairs, no per-pair Python work. Each (src, dst) must appear once (the
graph stage aggregates its edges); a pair with no edge, or with a missing (negative) id, is
not found. `lookup_reference` is the same with a dict.
"""

from __future__ import annotations

import numpy as np

from udfs.topk import pair_keys

__all__ = ["edge_table", "lookup", "lookup_reference"]


def edge_table(src, dst, value) -> tuple[np.ndarray, np.ndarray]:
    """(sorted int64 keys, float64 values) of the edges; ids in [0, 2**31)."""
    keys = pair_keys(src, dst)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if keys.size > 1 and (keys[1:] == keys[:-1]).any():
        raise ValueError("an edge (src, dst) appears more than once")
    return keys, np.asarray(value, dtype=np.float64)[order]


def lookup(table: tuple[np.ndarray, np.ndarray], src, dst) -> tuple[np.ndarray, np.ndarray]:
    """(values, found): each pair's edge value (0.0 where not found) and whether it has one."""
    keys, values = table
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if keys.size == 0:
        return np.zeros(src.shape), np.zeros(src.shape, dtype=bool)
    valid = (src >= 0) & (dst >= 0)
    want = pair_keys(np.where(valid, src, 0), np.where(valid, dst, 0))
    at = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    found = valid & (keys[at] == want)
    return np.where(found, values[at], 0.0), found


def lookup_reference(edges, pairs) -> list[float | None]:
    """edges: [(src, dst, value)], pairs: [(src or None, dst or None)] -> value or None."""
    d = {(s, t): v for s, t, v in edges}
    return [None if s is None or t is None else d.get((s, t)) for s, t in pairs]
