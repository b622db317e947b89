"""Recency-weighted mean of item vectors per user (the `recent_mean` user vectors).

A user's recent items are given newest first, as CSR: user u's items are
items[offsets[u]:offsets[u + 1]] (at most the history length). The user's vector is
Σ_p decay**p · item_vecs[i_p] over those items (p = 0 is the newest), scaled to unit length.

Cost, with U users, E items in their lists (E ≤ U·history) and d dimensions: O(E·d) time,
O(U·d) memory besides the item matrix (items × d, read-only, broadcast once per worker).
"""

from __future__ import annotations

import numpy as np


def recent_mean_rows(
    offsets: np.ndarray, items: np.ndarray, item_vecs: np.ndarray, has_vec: np.ndarray, decay: float
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors U x d float64, kept U bool): the unit-length recency-weighted sums; an item
    without a vector (has_vec false, or an index past the matrix) is left out, and a user
    whose sum is all zeros is not kept (no vector, as an inner join with the item vectors
    and dropping rows of norm 0 would give)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    n_users, d = len(offsets) - 1, item_vecs.shape[1]
    counts = np.diff(offsets)
    acc = np.zeros((n_users, d), dtype=np.float64)
    longest = int(counts.max()) if n_users else 0
    # One pass per position p (at most the history length), each over the users that long:
    # every user's terms are added newest first, as the definition reads.
    for p in range(longest):
        users = np.flatnonzero(counts > p)
        rows = items[offsets[users] + p]
        ok = (rows >= 0) & (rows < len(item_vecs))
        ok[ok] = has_vec[rows[ok]]
        users, rows = users[ok], rows[ok]
        acc[users] += (decay**p) * item_vecs[rows]
    norms = np.sqrt(np.einsum("ij,ij->i", acc, acc))
    kept = norms > 0
    acc[kept] /= norms[kept, None]
    return acc, kept


def recent_mean_reference(
    lists: list[list[int]], item_vecs: dict[int, list[float]], decay: float
) -> list[list[float] | None]:
    """Plain-Python twin: per user (newest item first), the unit-length weighted sum, or None."""
    out: list[list[float] | None] = []
    for items in lists:
        d = len(next(iter(item_vecs.values()))) if item_vecs else 0
        acc = [0.0] * d
        for p, i in enumerate(items):
            if i in item_vecs:
                acc = [a + decay**p * v for a, v in zip(acc, item_vecs[i], strict=True)]
        norm = sum(a * a for a in acc) ** 0.5
        out.append([a / norm for a in acc] if norm > 0 else None)
    return out
