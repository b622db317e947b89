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

Cost: E = Σ_u Σ_{i in entries(u)} len(row_i) expanded terms, C_u cells a user touches.
Compiled (numba), one user at a time into a dense accumulator over the table's columns: O(E)
for the sums, O(C_u) to select a user's top k (partition at the k-th score) and O(k log k)
to order it, plus one O(n log n) sort of the entries; O(columns) scratch memory, whatever the
batch size. No Python work per user or per term.
"""

from __future__ import annotations

import numpy as np

from udfs.njit_cached import njit_cached
from udfs.top_indices import emit_top

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


@njit_cached(nogil=True)
def _row_sum_topk(
    user_offsets, items, weights, indptr, indices, values, seen_offsets, seen_items, n_cols,
    k, positive_only, capacity,
):  # fmt: skip
    """Entries sorted by (user, item, weight) -> (user, item, score) in (user, rank) order,
    and whether any sum was NaN."""
    out_u = np.empty(capacity, np.int64)
    out_j = np.empty(capacity, np.int32)
    out_s = np.empty(capacity, np.float64)
    out_r = np.empty(capacity, np.int32)  # the shared emitter's ranks; callers rank by order
    acc = np.zeros(n_cols, np.float64)
    touched = np.zeros(n_cols, np.bool_)
    seen = np.zeros(n_cols, np.bool_)
    cells = np.empty(n_cols, np.int64)
    cand_j = np.empty(n_cols, np.int64)
    cand_s = np.empty(n_cols, np.float64)
    n_out = 0
    has_nan = False
    for u in range(user_offsets.shape[0] - 1):
        n_cells = 0
        for e in range(user_offsets[u], user_offsets[u + 1]):
            i, w = items[e], weights[e]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if not touched[j]:
                    touched[j] = True
                    acc[j] = 0.0
                    cells[n_cells] = j
                    n_cells += 1
                acc[j] += w * values[p]  # the documented order: entries, then row order
        for q in range(seen_offsets[u], seen_offsets[u + 1]):
            if seen_items[q] < n_cols:
                seen[seen_items[q]] = True
        m = 0
        for c in range(n_cells):
            j = cells[c]
            has_nan |= np.isnan(acc[j])
            if not seen[j] and (acc[j] > 0.0 or not positive_only):
                cand_j[m] = j
                cand_s[m] = acc[j]
                m += 1
            touched[j] = False
        for q in range(seen_offsets[u], seen_offsets[u + 1]):
            if seen_items[q] < n_cols:
                seen[seen_items[q]] = False
        n_out = emit_top(u, cand_j, cand_s, m, k, out_u, out_j, out_s, out_r, n_out)
    return out_u[:n_out], out_j[:n_out], out_s[:n_out], has_nan


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user int64, item int32, score float64): per user position u of the batch, the top k
    of Σ_i w_u(i) · row_i by (score desc, item asc), items in seen[u] removed.

    Every item a user's rows touch is a candidate, even when its terms sum to 0 or less (as a
    join + groupBy would); `positive_only` keeps only scores > 0. Sorted by (user, rank).
    Users with no entries, no reachable items, or only seen ones get no rows.
    O(E) for E expanded terms, plus each user's selection (module doc); scores must not be
    NaN.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
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
    indices = np.asarray(indices, dtype=np.int32)
    values = np.asarray(values, dtype=np.float64)
    n_cols = int(indices.max()) + 1 if indices.size else 0
    terms = np.bincount(users, weights=indptr[items + 1] - indptr[items], minlength=n_users)
    capacity = int(np.minimum(terms, max(int(k), 0)).sum())
    u, j, s, has_nan = _row_sum_topk(
        user_offsets, items, weights, indptr, indices, values, seen_offsets, seen_items,
        n_cols, int(k), bool(positive_only), capacity,
    )  # fmt: skip
    if has_nan:
        raise ValueError("score must not contain NaN")
    return u, j, s


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
