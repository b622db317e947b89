"""Item-item co-occurrence cosine from users' item sets, one item's row at a time.

H_u is user u's set of items, w_u = weight_table[|H_u|] an integer weight (the caller's
weights in fixed point, see `fixed_point_weights`). For items i, j:
    C_ij = Σ_{u : i, j ∈ H_u} w_u,   n_ij = |{u : i, j ∈ H_u}|,
    sim(i, j) = C_ij / sqrt(C_ii · C_jj)   (each C as a double),
and item i keeps its k most similar j ≠ i with n_ij ≥ min_support (sim desc, ties: smaller j).

The sums are integers, so they are exact and do not depend on the order users are visited
in: any split of the items over tasks, and the Spark join in pipelines/neighbors/items.py
(which sums the same integers), give bit-identical tables.

Compiled (numba). The users' sets are given twice, as CSR user -> items and item -> users.
Item i's row: for each user u of i, add w_u to every j in H_u in a dense accumulator over
the items with a list of the touched ones, so O(Σ_{u ∋ i} |H_u|) for the sums, O(T_i) for
the candidates it touched and O(k log k) to order its top. All items: O(Σ_u |H_u|²).
O(n_items) scratch memory. `cooccurrence_reference` is the plain-Python definition.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from udfs.njit_cached import njit_cached
from udfs.top_indices import emit_top

__all__ = [
    "cooccurrence_reference",
    "cooccurrence_topk",
    "fixed_point_weights",
    "item_sets_csr",
    "item_weight_sums",
]


def fixed_point_weights(weights: np.ndarray, n_users: int) -> np.ndarray:
    """int64 weights round(w · 2**b) for w in [0, 1], with b as large as lets a sum over
    `n_users` users stay below 2**63 (at most 52: a weight keeps a double's precision).

    Integer sums are exact and associative: the similarity is then a function of the users'
    item sets only, not of the order a shuffle or a task visits them in."""
    weights = np.asarray(weights, dtype=np.float64)
    if ((weights < 0) | (weights > 1) | ~np.isfinite(weights)).any():
        raise ValueError("co-occurrence weights must be in [0, 1]")
    bits = min(52, 62 - max(1, int(n_users)).bit_length())
    return np.array([round(float(w) * 2.0**bits) for w in weights], dtype=np.int64)


def item_sets_csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    """Distinct (user, item) pairs -> (user_indptr, user_items, item_indptr, item_users):
    CSR user -> items (each row sorted by item) and item -> users (each row sorted by user).
    O(nnz log nnz)."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError("users and items must be 1-d arrays of equal length")
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(f"user ids outside [0, {n_users})")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item ids outside [0, {n_items})")
    by_user = np.lexsort((items, users))
    by_item = np.lexsort((users, items))
    user_indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=user_indptr[1:])
    item_indptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(items, minlength=n_items), out=item_indptr[1:])
    su, si = users[by_user], items[by_user]
    if ((su[1:] == su[:-1]) & (si[1:] == si[:-1])).any():
        raise ValueError("(user, item) pairs must be distinct: an item set has no repeats")
    return (
        user_indptr,
        si.astype(np.int32),
        item_indptr,
        users[by_item].astype(np.int32),
    )


@njit_cached(nogil=True)
def _weight_sums(item_indptr, item_users, user_weight):
    n_items = item_indptr.shape[0] - 1
    out = np.zeros(n_items, np.int64)
    for i in range(n_items):
        s = 0
        for p in range(item_indptr[i], item_indptr[i + 1]):
            s += user_weight[item_users[p]]
        out[i] = s
    return out


def item_weight_sums(item_indptr, item_users, user_weight) -> np.ndarray:
    """C_ii = Σ_{u ∋ i} w_u per item (int64). O(nnz)."""
    return _weight_sums(
        np.asarray(item_indptr, np.int64),
        np.asarray(item_users, np.int32),
        np.asarray(user_weight, np.int64),
    )


@njit_cached(nogil=True)
def _rows(
    user_indptr, user_items, item_indptr, item_users, user_weight, norms, rows, min_support, k
):  # fmt: skip
    n_items = item_indptr.shape[0] - 1
    cap = rows.shape[0] * k
    out_i = np.empty(cap, np.int32)
    out_j = np.empty(cap, np.int32)
    out_s = np.empty(cap, np.float64)
    out_r = np.empty(cap, np.int32)
    acc = np.zeros(n_items, np.int64)
    cnt = np.zeros(n_items, np.int64)
    cells = np.empty(n_items, np.int64)
    cand_j = np.empty(n_items, np.int64)
    cand_s = np.empty(n_items, np.float64)
    n_out = 0
    for r in range(rows.shape[0]):
        i = rows[r]
        n_cells = 0
        for p in range(item_indptr[i], item_indptr[i + 1]):
            u = item_users[p]
            w = user_weight[u]
            for q in range(user_indptr[u], user_indptr[u + 1]):
                j = user_items[q]
                if cnt[j] == 0:
                    cells[n_cells] = j
                    n_cells += 1
                acc[j] += w
                cnt[j] += 1
        ci = float(norms[i])
        m = 0
        for c in range(n_cells):
            j = cells[c]
            if j != i and cnt[j] >= min_support:
                cand_j[m] = j
                cand_s[m] = float(acc[j]) / np.sqrt(ci * float(norms[j]))
                m += 1
            acc[j] = 0
            cnt[j] = 0
        n_out = emit_top(i, cand_j, cand_s, m, k, out_i, out_j, out_s, out_r, n_out)
    return out_i[:n_out], out_j[:n_out], out_s[:n_out], out_r[:n_out]


def cooccurrence_topk(
    user_indptr, user_items, item_indptr, item_users, user_weight, norms, rows, *,
    min_support: int, k: int,
):  # fmt: skip
    """(item int32, neighbor int32, sim float64, rank int32) for the items `rows`, in
    (row order, rank) order: the top k per item by the module's definition. `user_weight`:
    int64 w_u per user; `norms`: `item_weight_sums`."""
    if min(min_support, k) < 0:
        raise ValueError("min_support and k must be >= 0")
    return _rows(
        np.asarray(user_indptr, np.int64),
        np.asarray(user_items, np.int32),
        np.asarray(item_indptr, np.int64),
        np.asarray(item_users, np.int32),
        np.asarray(user_weight, np.int64),
        np.asarray(norms, np.int64),
        np.asarray(rows, np.int64),
        int(min_support),
        int(k),
    )


def cooccurrence_reference(item_sets: dict[int, set[int]], weight, *, min_support, k):
    """The definition: {user: set of items}, weight(|H_u|) -> int -> {item: [(j, sim)]}
    best first, for every item with at least one neighbour."""
    c: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    n: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for hist in item_sets.values():
        w = int(weight(len(hist)))
        for i in hist:
            for j in hist:
                c[i][j] += w
                n[i][j] += 1
    out = {}
    for i in c:
        sims = [
            (j, float(c[i][j]) / math.sqrt(float(c[i][i]) * float(c[j][j])))
            for j in c[i]
            if j != i and n[i][j] >= min_support
        ]
        sims.sort(key=lambda p: (-p[1], p[0]))
        if sims[:k]:
            out[i] = sims[:k]
    return out
