"""Per-user top k of a weighted sum of CSR rows: score(u, ·) = Σ_i w_u(i) · row_i, seen removed.

The kernel of the history-based candidate sources (ppr, item_cf, user_cf). A batch of users
is given in CSR form: user u's entries are (user_items[a:b], user_weights[a:b]) with
a, b = user_offsets[u], user_offsets[u + 1]; the table is a CSR matrix (indptr, indices,
values) whose row i is the sparse vector the entry i contributes. For ppr and item_cf the
entries are the user's recent items and the table is item -> item; for user_cf the entries are
the user's neighbours (weights their similarities) and the table is user -> recent items.

Summation order (so results do not depend on the order the entries arrive in): a user's
entries are taken in (item, weight) order, each row in its CSR order, and every cell
(u, j) adds its terms in that order, starting from 0.0. `csr_from_triples` sorts rows by
(column, value), so the whole result is a function of the multiset of table rows and of each
user's multiset of entries; `weighted_row_sum_topk_reference` adds in the same order and is
bit-identical.

Cost: E = Σ_u Σ_{i in entries(u)} len(row_i) expanded terms; one sort of the E cell keys
(np.unique) and one of the surviving cells for the top k: O(E log E) time. Users are taken in
chunks of about `max_entries` terms (a user is never split), so memory is O(max_entries),
~100 bytes a term at peak (~100 MB at the default), whatever the batch size. No dense
accumulator: the cost does not grow with the number of columns.
"""

from __future__ import annotations

import numpy as np

from udfs.topk import top_k_per_source

__all__ = ["csr_from_triples", "weighted_row_sum_topk", "weighted_row_sum_topk_reference"]


def csr_from_triples(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64[n_rows + 1], indices int32[nnz], values float64[nnz]), each row sorted by
    (column, value), values as given (no normalisation, unlike udfs.csr.csr_from_edges).

    Duplicate (row, col) triples are kept: the kernel adds them, as a join would.
    O(nnz log nnz).
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if not rows.shape == cols.shape == values.shape or rows.ndim != 1:
        raise ValueError("rows, cols and values must be 1-d arrays of equal length")
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"row ids outside [0, {n_rows}): the table and its id space disagree")
    if cols.size and (cols.min() < 0 or cols.max() >= 2**31):
        raise ValueError("column ids must be in [0, 2**31)")
    order = np.lexsort((values, cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), values[order]


def _lengths(offsets: np.ndarray, name: str) -> np.ndarray:
    lengths = np.diff(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or (lengths < 0).any():
        raise ValueError(f"{name} must be non-decreasing offsets starting at 0")
    return lengths


def _chunk(users, items, weights, indptr, indices, values, seen_keys, k, positive_only):
    """Top k of one chunk of entries (sorted by user, item, weight) -> (user, item, score)."""
    deg = indptr[items + 1] - indptr[items]
    total = int(deg.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0)
    # Table position of every expanded term: its row's first entry plus its offset in the row.
    within = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg)
    e = np.repeat(indptr[items], deg) + within
    key = (np.repeat(users, deg) << 32) | indices[e].astype(np.int64)
    term = np.repeat(weights, deg) * values[e]
    cells, inv = np.unique(key, return_inverse=True)
    # bincount adds each cell's terms in input order: the documented summation order.
    score = np.bincount(inv.ravel(), weights=term, minlength=cells.shape[0])
    keep = ~np.isin(cells, seen_keys)
    if positive_only:
        keep &= score > 0
    u, j, s, _ = top_k_per_source(
        cells[keep] >> 32, cells[keep] & 0xFFFFFFFF, score[keep], k, exclude_self=False
    )
    return u.astype(np.int64), j, s


def weighted_row_sum_topk(
    user_offsets: np.ndarray,
    user_items: np.ndarray,
    user_weights: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    seen_offsets: np.ndarray,
    seen_items: np.ndarray,
    k: int,
    positive_only: bool = False,
    max_entries: int = 1 << 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user int64, item int32, score float64): per user position u of the batch, the top k
    of Σ_i w_u(i) · row_i by (score desc, item asc), items in seen[u] removed.

    Every item a user's rows touch is a candidate, even when its terms sum to 0 or less (as a
    join + groupBy would); `positive_only` keeps only scores > 0. Sorted by (user, rank).
    Users with no entries, no reachable items, or only seen ones get no rows.
    O(E log E) for E expanded terms (module doc); scores must not be NaN.
    """
    user_offsets = np.asarray(user_offsets, dtype=np.int64)
    items = np.asarray(user_items, dtype=np.int64)
    weights = np.asarray(user_weights, dtype=np.float64)
    seen_offsets = np.asarray(seen_offsets, dtype=np.int64)
    seen_items = np.asarray(seen_items, dtype=np.int64)
    indptr = np.asarray(indptr, dtype=np.int64)
    lengths = _lengths(user_offsets, "user_offsets")
    seen_lengths = _lengths(seen_offsets, "seen_offsets")
    n_users, n_rows = lengths.shape[0], indptr.shape[0] - 1
    if seen_lengths.shape[0] != n_users:
        raise ValueError(f"seen_offsets has {seen_lengths.shape[0]} users, user_offsets {n_users}")
    if not items.shape == weights.shape == (user_offsets[-1],):
        raise ValueError("user_items and user_weights must have user_offsets[-1] entries")
    if items.size and (items.min() < 0 or items.max() >= n_rows):
        bad = items[(items < 0) | (items >= n_rows)][0]
        raise ValueError(f"entry {bad} outside the table's rows [0, {n_rows})")
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    order = np.lexsort((weights, items, users))
    items, weights = items[order], weights[order]
    seen_keys = (np.repeat(np.arange(n_users, dtype=np.int64), seen_lengths) << 32) | seen_items

    # Chunks of whole users, about max_entries expanded terms each.
    terms = np.bincount(users, weights=indptr[items + 1] - indptr[items], minlength=n_users)
    before = np.cumsum(terms) - terms
    bounds = np.flatnonzero(np.diff(before // max(int(max_entries), 1), prepend=-1))
    bounds = np.append(bounds, n_users)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        a, b = user_offsets[lo], user_offsets[hi]
        sa, sb = seen_offsets[lo], seen_offsets[hi]
        parts.append(
            _chunk(
                users[a:b],
                items[a:b],
                weights[a:b],
                indptr,
                indices,
                values,
                seen_keys[sa:sb],
                k,
                positive_only,
            )
        )
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0)
    return tuple(np.concatenate([p[c] for p in parts]) for c in range(3))


def weighted_row_sum_topk_reference(
    user_offsets,
    user_items,
    user_weights,
    indptr,
    indices,
    values,
    seen_offsets,
    seen_items,
    k: int,
    positive_only: bool = False,
) -> list[tuple[int, int, float]]:
    """The definition with dicts and loops: [(user, item, score)] in (user, rank) order."""
    out = []
    for u in range(len(user_offsets) - 1):
        a, b = int(user_offsets[u]), int(user_offsets[u + 1])
        acc: dict[int, float] = {}
        pairs = zip(map(int, user_items[a:b]), map(float, user_weights[a:b]), strict=True)
        for i, w in sorted(pairs):
            for e in range(int(indptr[i]), int(indptr[i + 1])):
                j = int(indices[e])
                acc[j] = acc.get(j, 0.0) + w * float(values[e])
        seen = {int(j) for j in seen_items[seen_offsets[u] : seen_offsets[u + 1]]}
        ranked = sorted(
            ((j, s) for j, s in acc.items() if j not in seen and (s > 0 or not positive_only)),
            key=lambda p: (-p[1], p[0]),
        )
        out.extend((u, j, s) for j, s in ranked[:k])
    return out
